"""Lightweight OpenPose: pafpose's network holds the published checkpoint's keys and shapes, the
ONNX export gives PyTorch's maps, bad checkpoints are refused in one line, and `--model FILE.pth`
runs end to end.

The checkpoints here are written like the published `checkpoint_iter_370000.pth` (a legacy,
non-zip torch.save dict with `state_dict`, optimiser and schedule state, 3 refinement stages)
with random, seeded values; the key names and shapes are written out below from the published
layout, independently of the network's code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, OrderedDict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from pafpose.errors import MissingDependencyError, ModelError

from .conftest import MEDIA, need

torch = pytest.importorskip("torch", reason="PyTorch not installed (pip install torch, "
                                            "see DEVELOPERS.md)")

# --------------------------------------------------------------------------- the published layout

#: (input, output) channels of the 11 depthwise-separable blocks model.1 .. model.11.
_SEPARABLE = [(32, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512),
              *[(512, 512)] * 5]
_HEADS = (("heatmaps", 19), ("pafs", 38))


def published_shapes(refinement_stages: int) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the published checkpoint's state_dict, for that many refinement stages."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(key: str, cout: int, cin: int, k: int, bias: bool = True) -> None:
        shapes[key + ".weight"] = (cout, cin, k, k)
        if bias:
            shapes[key + ".bias"] = (cout,)

    def bn(key: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{key}.{name}"] = (c,)
        shapes[key + ".num_batches_tracked"] = ()

    conv("model.0.0", 32, 3, 3, bias=False)
    bn("model.0.1", 32)
    for i, (cin, cout) in enumerate(_SEPARABLE, 1):
        conv(f"model.{i}.0", cin, 1, 3, bias=False)
        bn(f"model.{i}.1", cin)
        conv(f"model.{i}.3", cout, cin, 1, bias=False)
        bn(f"model.{i}.4", cout)
    conv("cpm.align.0", 128, 512, 1)
    for j in range(3):
        conv(f"cpm.trunk.{j}.0", 128, 1, 3, bias=False)
        conv(f"cpm.trunk.{j}.2", 128, 128, 1, bias=False)
    conv("cpm.conv.0", 128, 128, 3)
    for j in range(3):
        conv(f"initial_stage.trunk.{j}.0", 128, 128, 3)
    for head, out in _HEADS:
        conv(f"initial_stage.{head}.0.0", 512, 128, 1)
        conv(f"initial_stage.{head}.1.0", out, 512, 1)
    for r in range(refinement_stages):
        stage = f"refinement_stages.{r}"
        for b in range(5):
            conv(f"{stage}.trunk.{b}.initial.0", 128, 185 if b == 0 else 128, 1)
            for t in range(2):
                conv(f"{stage}.trunk.{b}.trunk.{t}.0", 128, 128, 3)
                bn(f"{stage}.trunk.{b}.trunk.{t}.1", 128)
        for head, out in _HEADS:
            conv(f"{stage}.{head}.0.0", 128, 128, 1)
            conv(f"{stage}.{head}.1.0", out, 128, 1)
    return shapes


def random_state(refinement_stages: int = 3, seed: int = 0) -> OrderedDict:
    """A state_dict of the published layout with random values (weights scaled by fan-in, so
    the maps stay of order 1 through the network)."""
    gen = torch.Generator().manual_seed(seed)
    state: OrderedDict = OrderedDict()
    for key, shape in published_shapes(refinement_stages).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(370000)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        elif key.endswith(".weight") and len(shape) == 1:  # BatchNorm scale
            state[key] = torch.rand(shape, generator=gen) + 0.5
        elif len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=gen) * (2.0 / fan_in) ** 0.5
        else:  # biases, BatchNorm shifts and means
            state[key] = torch.randn(shape, generator=gen) * 0.1
    return state


def write_checkpoint(path: Path, state: dict, **extra: object) -> Path:
    """Save like Osokin's train.py, in the legacy (pre-1.6) format of the published file."""
    ckpt = {"state_dict": state, "optimizer": {"state": {}, "param_groups": [{"lr": 4e-5}]},
            "scheduler": {"milestones": Counter({100: 1, 200: 1}), "last_epoch": 3},
            "iter": 370000, "current_epoch": 3, **extra}
    torch.save(ckpt, path, _use_new_zipfile_serialization=False)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A checkpoint with 3 refinement stages, as the published one."""
    return write_checkpoint(tmp_path_factory.mktemp("light") / "light.pth", random_state(3))


def _one_line_error(exc_info: pytest.ExceptionInfo, *parts: str) -> str:
    text = str(exc_info.value)
    assert "\n" not in text, text
    for part in parts:
        assert part in text, text
    return text


#: Lightweight OpenPose's limbs (part pairs) and the PAF channel pair (x, y) of each, in its
#: grouping order, as its modules/keypoints.py publishes them (BODY_PARTS_KPT_IDS / _PAF_IDS).
_ITS_LIMBS = [(1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
              (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17)]
_ITS_PAFS = [(12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3), (4, 5),
             (6, 7), (8, 9), (10, 11), (28, 29), (30, 31), (34, 35), (32, 33), (36, 37), (18, 19),
             (26, 27)]


def test_its_limbs_and_paf_channels_are_openpose18s() -> None:
    """Why the converted model declares `openpose18` and moves no channel."""
    from pafpose.skeleton import LIMB_PAF_CHANNELS, LIMBS

    assert list(LIMBS) == _ITS_LIMBS and list(LIMB_PAF_CHANNELS) == _ITS_PAFS


# --------------------------------------------------------------------------- the network


@pytest.mark.parametrize("stages, tensors, parameters", [(1, 250, 4_091_698), (3, 426, 7_308_964)])
def test_the_network_has_the_published_keys_and_shapes(stages: int, tensors: int,
                                                       parameters: int) -> None:
    from pafpose.train.networks.lightweight import LightweightOpenPose

    spec = published_shapes(stages)
    # The published counts: 250 / 426 state-dict tensors, 4.09 M / 7.31 M parameters.
    assert len(spec) == tensors
    net = LightweightOpenPose(stages)
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == spec
    assert sum(p.numel() for p in net.parameters()) == parameters


@pytest.mark.parametrize("stages", [1, 3])
def test_onnx_runtime_gives_the_pytorch_maps(checkpoint: Path, stages: int) -> None:
    from pafpose.models.lightweight import LAYOUT, convert_checkpoint
    from pafpose.train.networks.lightweight import LightweightOpenPose

    model = convert_checkpoint(checkpoint, refinement_stages=stages)
    meta = {p.key: p.value for p in model.metadata_props}
    assert LAYOUT.items() <= meta.items() and meta["pafpose.refinement_stages"] == str(stages)
    assert meta["pafpose.input"] == "(bgr-128)/256" and meta["pafpose.skeleton"] == "openpose18"
    (inp,) = model.graph.input
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    assert dims == [1, 3, "H", "W"] and len(model.graph.output) == 1

    # The reference: the stored weights loaded by PyTorch itself, strictly, minus the
    # refinement stages not asked for.
    state = random_state(3)
    net = LightweightOpenPose(stages)
    net.load_state_dict({k: v for k, v in state.items() if not k.startswith(
        tuple(f"refinement_stages.{r}." for r in range(stages, 3)))}, strict=True)
    image = np.random.default_rng(1).integers(0, 256, (1, 3, 72, 104)).astype(np.float32)
    x = (image - 128) / 256
    with torch.no_grad():
        expected = net.eval()(torch.from_numpy(x))[-1].numpy()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"image": x})
    assert got.shape == expected.shape == (1, 57, 9, 13)  # another size than the traced one
    spread = float(expected.max() - expected.min())
    assert spread > 0.1  # the maps are not flat: the comparison means something
    assert float(np.abs(got - expected).max()) <= 1e-4 * spread


def test_more_refinement_stages_than_stored_are_refused(tmp_path: Path) -> None:
    from pafpose.models.lightweight import convert_checkpoint

    one = write_checkpoint(tmp_path / "one.pth", random_state(1))
    with pytest.raises(ModelError) as exc:
        convert_checkpoint(one, refinement_stages=3)
    _one_line_error(exc, "holds 1 refinement stage, not 3",
                    "missing key 'refinement_stages.1.")


def _without(key: str):
    def edit(state: OrderedDict) -> None:
        del state[key]
    return edit


def _with(key: str, shape: tuple[int, ...]):
    def edit(state: OrderedDict) -> None:
        state[key] = torch.zeros(shape)
    return edit


@pytest.mark.parametrize("edit, message", [
    (_without("cpm.conv.0.bias"), "missing key 'cpm.conv.0.bias'"),
    (_without("model.7.0.weight"), "missing key 'model.7.0.weight'"),
    (_with("cpm.extra.weight", (3,)), "unexpected key 'cpm.extra.weight'"),
    (_with("initial_stage.pafs.1.0.weight", (36, 512, 1, 1)),
     "key 'initial_stage.pafs.1.0.weight' has shape (36, 512, 1, 1), the network needs "
     "(38, 512, 1, 1)"),
], ids=["missing-bias", "missing-backbone", "extra", "shape"])
def test_a_checkpoint_that_does_not_fit_is_refused_naming_the_key(tmp_path: Path, edit,
                                                                  message: str) -> None:
    from pafpose.models.lightweight import convert_checkpoint

    state = random_state(1)
    edit(state)
    path = write_checkpoint(tmp_path / "bad.pth", state)
    with pytest.raises(ModelError) as exc:
        convert_checkpoint(path)
    _one_line_error(exc, message, str(path))


def test_batchnorm_counters_may_be_absent(tmp_path: Path) -> None:
    """Checkpoints of PyTorch before 0.4.1 have no num_batches_tracked; inference needs none."""
    from pafpose.models.lightweight import load_network

    state = OrderedDict((k, v) for k, v in random_state(1).items()
                        if not k.endswith("num_batches_tracked"))
    net = load_network(write_checkpoint(tmp_path / "old.pth", state), 1)
    assert torch.equal(net.state_dict()["cpm.conv.0.weight"], state["cpm.conv.0.weight"])


class _RunsCode:
    """Pickled as a call of os.system: a checkpoint that would run a command when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_checkpoint_holding_code_is_refused_without_running_it(tmp_path: Path) -> None:
    from pafpose.models.lightweight import convert_checkpoint

    marker = tmp_path / "ran"
    path = write_checkpoint(tmp_path / "evil.pth", random_state(1), hook=_RunsCode(marker))
    with pytest.raises(ModelError) as exc:
        convert_checkpoint(path)
    _one_line_error(exc, str(path), "refused", "system")
    assert not marker.exists()


@pytest.mark.parametrize("data", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated"])
def test_a_file_that_is_no_checkpoint_gives_one_line(tmp_path: Path, data: bytes) -> None:
    from pafpose.models.lightweight import convert_checkpoint

    path = tmp_path / "junk.pth"
    path.write_bytes(data)
    with pytest.raises(ModelError) as exc:
        convert_checkpoint(path)
    _one_line_error(exc, str(path))


def test_without_pytorch_one_line_names_the_extra(monkeypatch, checkpoint: Path) -> None:
    from pafpose.models.lightweight import convert_checkpoint

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(MissingDependencyError) as exc:
        convert_checkpoint(checkpoint)
    assert str(exc.value) == ("converting a Lightweight OpenPose checkpoint needs PyTorch: "
                              "pip install '.[train]'")


# --------------------------------------------------------------------------- --model FILE.pth


def test_model_pth_is_converted_once_and_cached(tmp_path: Path, checkpoint: Path) -> None:
    from pafpose.models.resolve import resolve_model

    pth = tmp_path / checkpoint.name
    pth.write_bytes(checkpoint.read_bytes())
    first = resolve_model(pth)
    assert first == tmp_path / "light.refine1.onnx"
    meta = {p.key: p.value for p in onnx.load(first, load_external_data=False).metadata_props}
    assert meta["pafpose.refinement_stages"] == "1" and meta["pafpose.source_sha256"]
    stamp = first.stat().st_mtime_ns
    assert resolve_model(pth) == first and first.stat().st_mtime_ns == stamp  # not rebuilt
    four = resolve_model(pth, stages=4)  # the initial stage + 3 refinement stages
    meta4 = {p.key: p.value for p in onnx.load(four, load_external_data=False).metadata_props}
    assert four.name == "light.refine3.onnx" and meta4["pafpose.refinement_stages"] == "3"


def test_predict_with_a_pth_model_end_to_end(tmp_path: Path, checkpoint: Path) -> None:
    image = need(MEDIA / "messi5.jpg")
    pth = tmp_path / "light.pth"
    pth.write_bytes(checkpoint.read_bytes())
    res = subprocess.run([sys.executable, "-m", "pafpose", "predict", str(image), "--model",
                          str(pth), "--resize", "128x96", "--json-output", "-"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    (entry,) = json.loads(res.stdout)
    assert entry["image"] == str(image) and isinstance(entry["people"], list)
    assert (tmp_path / "light.refine1.onnx").is_file()


def test_a_broken_pth_model_is_one_line_and_exit_2(tmp_path: Path) -> None:
    image = need(MEDIA / "messi5.jpg")
    pth = tmp_path / "broken.pth"
    pth.write_bytes(b"\x80\x02garbage")
    res = subprocess.run([sys.executable, "-m", "pafpose", "predict", str(image), "--model",
                          str(pth)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and str(pth) in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
