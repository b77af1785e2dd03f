"""The argument types and validators of the command line (pafpose/cli/options.py)."""

from __future__ import annotations

import argparse

import pytest

from pafpose.cli import options


@pytest.mark.parametrize("text, value", [("432x368", (432, 368)), ("0x0", (0, 0)),
                                         ("16X32", (16, 32))])
def test_size(text, value):
    assert options.size(text) == value


@pytest.mark.parametrize("text, message", [("big", "expected WxH"), ("4x", "expected WxH"),
                                           ("0x16", "expected positive WxH or 0x0"),
                                           ("-16x16", "expected positive WxH or 0x0")])
def test_size_refused(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        options.size(text)


def test_scales():
    assert options.scales("0.5,1,1.5,2") == [0.5, 1.0, 1.5, 2.0]
    for text in ("", "0", "1,x", "9", "-1"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected scales"):
            options.scales(text)


def test_positive_and_count():
    assert options.positive("2.5") == 2.5
    assert options.count("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match="expected a positive number"):
        options.positive("0")
    for text in ("0", "-2", "1.5", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected a positive integer"):
            options.count(text)


def test_int_in():
    port = options.int_in(0, 65535, "a port")
    assert port("0") == 0 and port("65535") == 65535
    with pytest.raises(argparse.ArgumentTypeError, match="expected a port from 0 to 65535"):
        port("65536")
    with pytest.raises(argparse.ArgumentTypeError, match="expected a port, got 'x'"):
        port("x")
    with pytest.raises(argparse.ArgumentTypeError, match="from 1 to 10,000,000,000"):
        options.MAX_PIXELS("0")
    assert port.__name__ == "a port"  # argparse names the type in its messages


def test_stage_count():
    assert options.stage_count("6") == 6
    with pytest.raises(argparse.ArgumentTypeError, match="from 1 to 6"):
        options.stage_count("7")
    with pytest.raises(argparse.ArgumentTypeError, match="positive integer"):
        options.stage_count("0")


def test_model_args_defaults():
    parser = argparse.ArgumentParser()
    options.add_model_args(parser)
    args = parser.parse_args([])
    assert (args.model, args.preset, args.backend, args.precision) == (
        "mobilenet_thin", "balanced", "auto", "auto")
    assert args.resize is None and args.flip is None and args.stages is None


def test_ceiling_below_the_minimum_is_a_user_error():
    from pafpose.errors import InputError

    parser = argparse.ArgumentParser()
    options.add_model_args(parser)
    with pytest.raises(InputError, match="at least 64 px"):
        options.estimator(parser.parse_args(["--max-input-side", "8"]))
