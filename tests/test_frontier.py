"""benchmarks/frontier.py: the Pareto frontier, the point specs, the table and the plot writer
(synthetic points; no model, no COCO run)."""

from __future__ import annotations

import cv2
import pytest

from benchmarks.frontier import (
    default_points,
    draw_frontier,
    main,
    pareto_front,
    parse_point,
    table_markdown,
    write_outputs,
)


def test_pareto_front_keeps_the_points_nothing_beats_in_latency_order() -> None:
    ms = [50.0, 10.0, 20.0, 30.0, 20.0, 400.0]
    ap = [0.35, 0.25, 0.30, 0.28, 0.29, 0.42]
    # 30 ms / 0.28 is beaten by 20 ms / 0.30; 20 ms / 0.29 by 20 ms / 0.30 (a tie on latency)
    assert pareto_front(ms, ap) == [1, 2, 0, 5]


def test_pareto_front_drops_a_slower_point_that_only_ties_on_ap() -> None:
    assert pareto_front([10.0, 20.0], [0.3, 0.3]) == [0]
    assert pareto_front([], []) == []


def test_the_plot_is_a_png_of_the_asked_size(tmp_path) -> None:
    out = tmp_path / "plot.png"
    draw_frontier(["fast", "balanced", "slow"], [19.0, 46.0, 800.0], [0.25, 0.29, 0.39],
                  out, title="synthetic", size=(640, 400))
    image = cv2.imread(str(out))
    assert image is not None and image.shape == (400, 640, 3)
    assert not list(tmp_path.glob(".*.part*"))  # written atomically, nothing left behind


def test_point_specs_set_the_preset_fields() -> None:
    p = parse_point("h432/k3/flip/s0.5+1/int8")
    assert (p.preset.resize, p.preset.size, p.preset.stages) == ("height", 432, 3)
    assert p.preset.flip and p.preset.scales == (0.5, 1.0) and p.precision == "int8"
    assert p.size == "h432" and p.preset.name == "h432/k3/flip/s0.5+1/int8"
    seed = parse_point("seed")
    assert seed.size == "432x368" and seed.preset.coords == "seed"
    stretch = parse_point("432x368")
    assert stretch.preset.resize == "stretch" and stretch.preset.coords == "center"
    for bad in ("", "h368/k9", "h368/what", "s0.5+x"):
        with pytest.raises(ValueError):
            parse_point(bad)
    assert all(parse_point(s) for s in default_points())


def test_outputs_are_written_and_the_table_marks_the_frontier(tmp_path) -> None:
    rows = [
        {"point": spec, "size": "h368", "stages": 6, "scales": "1", "flip": False,
         "precision": "fp32", "backend": "onnxruntime", "AP": a, "AP50": a, "APm": a, "APl": a,
         "AR": a, "median_ms": ms, "cpu_ms": ms, "images": 3, "load": 0.0}
        for spec, ms, a in (("h288", 20.0, 0.25), ("h368", 40.0, 0.29), ("h224", 30.0, 0.2))
    ]
    table = table_markdown(rows)
    assert "| **h288** |" in table and "| h224 |" in table
    assert table.index("h288") < table.index("h224") < table.index("h368")  # fastest first
    write_outputs(rows, tmp_path, "t")
    assert {p.name for p in tmp_path.iterdir()} == {
        "points.json", "points.csv", "frontier.md", "frontier.png"}
    # --replot redraws from points.json without measuring, here against the CPU time
    again = tmp_path / "again"
    assert main(["--replot", str(tmp_path / "points.json"), "--out", str(again),
                 "--x", "cpu_ms"]) == 0
    assert (again / "frontier.png").is_file()
