"""Presets as data: the zoom preset."""

from __future__ import annotations

from pafpose.presets import PRESETS, ZOOM_FIRST_SCALES, get_preset
from pafpose.zoom import ZoomParams


def test_zoom_preset_is_balanced_plus_a_zoom():
    zoom, balanced = get_preset("zoom"), get_preset("balanced")
    assert isinstance(zoom.zoom, ZoomParams) and zoom.zoom.scale > 1
    assert zoom.scales == ZOOM_FIRST_SCALES and 1.0 in zoom.scales and not zoom.flip
    assert (zoom.resize, zoom.size, zoom.decode, zoom.interpolation, zoom.coords) == (
        balanced.resize, balanced.size, balanced.decode, balanced.interpolation,
        balanced.coords)
    # only the zoom preset zooms
    assert [p.name for p in PRESETS.values() if p.zoom is not None] == ["zoom"]
