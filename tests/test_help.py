"""`--help` of the command and of every sub-command: exit 0 and print its usage."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from pafpose.cli import build_parser, main

COMMANDS = ("predict", "eval", "bench", "models", "serve", "video", "webcam", "batch", "ros",
            "train", "export", "train-sample")


def _commands() -> list[str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def test_every_command_is_listed_here():
    assert _commands() == list(COMMANDS)


@pytest.mark.parametrize("argv", [[], *([c] for c in COMMANDS)], ids=lambda a: " ".join(a) or "-")
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {' '.join(['pafpose', *argv])} ")


def test_python_m_pafpose_help():
    res = subprocess.run([sys.executable, "-m", "pafpose", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.startswith("usage: pafpose ")
