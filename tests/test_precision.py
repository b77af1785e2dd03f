"""precision: CPU features, the precisions each backend runs, and the "auto" choice."""

from __future__ import annotations

import pytest

from pafpose.precision import (
    AP_TOLERANCE,
    MEASURED,
    MEASURED_BY_PRESET,
    CpuFeatures,
    Measured,
    choose_precision,
    cpu_features,
    int8_advice,
    ov_inference_hint,
)


def test_openvino_int8_runs_its_float_part_in_bf16_only_where_native() -> None:
    assert ov_inference_hint("int8", _cpu(vnni=True, avx512_bf16=True)) == "bf16"
    assert ov_inference_hint("int8", _cpu(vnni=True)) == "f32"
    assert ov_inference_hint("fp32", _cpu(avx512_bf16=True)) == "f32"  # fp32 means f32
    assert ov_inference_hint("bf16", _cpu()) == "bf16"


def _cpu(**flags: bool) -> CpuFeatures:
    base = dict(avx2=True, avx512=True, vnni=False, amx=False, avx512_bf16=False, amx_bf16=False)
    return CpuFeatures(model="test", **{**base, **flags})


@pytest.mark.parametrize(
    ("backend", "flags", "expected", "why"),
    [
        ("openvino", {}, "fp32", "no faster precision"),
        ("openvino", {"avx512_bf16": True}, "bf16", "OpenVINO, AVX512_BF16; coco-dev AP"),
        ("openvino", {"vnni": True}, "int8", "OpenVINO, VNNI"),
        ("openvino", {"vnni": True, "avx512_bf16": True}, "int8", "VNNI"),
        ("openvino", {"amx": True, "amx_bf16": True}, "int8", "AMX-INT8"),
        ("onnxruntime", {"avx512_bf16": True}, "fp32", "no faster precision"),  # no bf16 on ORT
        ("onnxruntime", {"vnni": True}, "int8", "ONNX Runtime, VNNI"),
    ],
)
def test_auto_precision_follows_the_cpu(backend, flags, expected, why) -> None:
    table = {("openvino", "fp32"): Measured(0.289, 60), ("openvino", "bf16"): Measured(0.288, 35),
             ("openvino", "int8"): Measured(0.285, 25),
             ("onnxruntime", "fp32"): Measured(0.289, 90),
             ("onnxruntime", "int8"): Measured(0.286, 35)}
    choice = choose_precision(backend, _cpu(**flags), table)
    assert choice.precision == expected and why in choice.reason
    assert choice.fallbacks[-1:] == (("fp32",) if expected != "fp32" else ())


def test_auto_precision_needs_ap_within_tolerance() -> None:
    table = {("openvino", "fp32"): Measured(0.289, 60), ("openvino", "bf16"): Measured(0.288, 35),
             ("openvino", "int8"): Measured(0.289 - AP_TOLERANCE - 0.005, 25)}
    choice = choose_precision("openvino", _cpu(vnni=True, avx512_bf16=True), table)
    assert choice.precision == "bf16" and choice.fallbacks == ("fp32",)
    assert "coco-dev AP 0.288 vs fp32 0.289" in choice.reason
    # the shipped tables: every row has its fp32 baseline to be judged against
    assert MEASURED is MEASURED_BY_PRESET["balanced"]
    for preset, rows in MEASURED_BY_PRESET.items():
        for (backend, precision), m in rows.items():
            assert (backend, "fp32") in rows and m.ap > 0 and m.net_ms > 0, (preset, precision)


@pytest.mark.parametrize(
    ("preset", "expected"),
    [("balanced", "int8"), ("fast", "bf16"), ("zoom", "bf16"), ("custom", "fp32")],
)
def test_auto_precision_is_judged_per_preset(preset, expected) -> None:
    # Measured on coco-dev: INT8 keeps balanced's AP but loses more than 0.01 on the network
    # cut at stage 4 (fast) and on the zoomed regions (zoom); a setting without measurements
    # keeps fp32.
    cpu = _cpu(vnni=True, avx512_bf16=True)
    choice = choose_precision("openvino", cpu, preset=preset)
    assert choice.precision == expected
    if preset in MEASURED_BY_PRESET:
        rows = MEASURED_BY_PRESET[preset]
        assert rows[("openvino", "fp32")].ap - rows[("openvino", expected)].ap <= AP_TOLERANCE
    else:
        assert "no coco-dev measurements" in choice.reason
    # ONNX Runtime's int8 keeps balanced's AP (min-max ranges) and is not measured elsewhere
    assert choose_precision("onnxruntime", cpu, preset=preset).precision == (
        "int8" if preset == "balanced" else "fp32")


# --- CPU features -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "vnni", "amx", "word"),
    [
        ("fpu sse avx2 fma", False, False, "optional"),
        ("avx2 avx512f avx512_vnni", True, False, "recommended"),
        ("avx2 avx_vnni", True, False, "recommended"),
        ("avx2 avx512f avx512_vnni amx_tile amx_int8", True, True, "recommended"),
        ("fpu sse sse2", False, False, "not recommended"),
    ],
)
def test_cpu_features_from_cpuinfo(tmp_path, flags, vnni, amx, word) -> None:
    flags += " avx512_bf16" if vnni else ""
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n\n"
                    f"processor\t: 1\nmodel name\t: Test CPU\nflags\t\t: {flags}\n")
    f = cpu_features(info)
    assert (f.model, f.vnni, f.amx, f.int8_recommended) == ("Test CPU", vnni, amx, vnni or amx)
    assert f.avx512_bf16 == f.bf16 == vnni and not f.amx_bf16
    assert int8_advice(f).startswith(f"int8 {word}")


def test_cpu_features_of_this_machine_and_of_nothing(tmp_path) -> None:
    assert cpu_features(tmp_path / "absent") == cpu_features(tmp_path / "absent")
    assert cpu_features(tmp_path / "absent").model == "unknown"
    assert isinstance(cpu_features().avx2, bool)
