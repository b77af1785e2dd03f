"""The train flags, built from TrainConfig's fields (pafpose/cli/train.py)."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from pafpose.cli.train import add_config_flags, config_from_args
from pafpose.train.config import TrainConfig


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    return parser.parse_args(argv)


def test_defaults_are_the_config_defaults():
    assert config_from_args(_parse("--coco-dir", "coco")) == TrainConfig("coco")


def test_every_setting_but_two_is_a_flag():
    flags = {f.name for f in dataclasses.fields(TrainConfig) if "help" in f.metadata}
    assert {f.name for f in dataclasses.fields(TrainConfig)} - flags == {"freeze_bn", "progress"}


def test_values_reach_the_config():
    config = config_from_args(_parse(
        "--coco-dir", "c", "--input", "256x192", "--no-amp", "--no-augment", "--resume",
        "--batch-size", "4", "--lr", "1e-3", "--schedule", "constant", "--val-every", "-1",
        "--stages", "3", "--output", "out"))
    assert config.input_size == (256, 192) and config.amp is False and config.augment is False
    assert config.resume is True and config.batch_size == 4 and config.lr == 1e-3
    assert (config.schedule, config.val_every, config.stages, config.output) == (
        "constant", -1, 3, "out")


@pytest.mark.parametrize("argv, message", [
    (("--batch-size", "0"), "expected a batch size from 1 to 4096"),
    (("--workers", "65"), "expected a process count from 0 to 64"),
    (("--stages", "7"), "expected a stage count from 1 to 6"),
    (("--schedule", "step"), "invalid choice"),
    (("--input", "big"), "expected WxH"),
])
def test_bad_values_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        _parse("--coco-dir", "c", *argv)
    assert message in capsys.readouterr().err


def test_help_shows_the_defaults(capsys):
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    text = " ".join(parser.format_help().split())
    for shown in ("(default 432x368)", "max gradient norm, 0 = off (default 100)",
                  "--weight-decay WEIGHT_DECAY (default 0)", "images per process (default 8)",
                  "--val-split VAL_SPLIT (default val2017)", "--coco-dir DIR"):
        assert shown in text
