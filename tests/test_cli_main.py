"""`pafpose.cli.main`: a user's error is one line (exit 2), a bug keeps its traceback."""

from __future__ import annotations

import argparse

import pytest

from pafpose import cli
from pafpose.errors import InputError, NotFoundError, OutputError


def _main_with(monkeypatch, error: BaseException) -> int:
    def command(args: argparse.Namespace) -> int:
        raise error

    monkeypatch.setattr(cli.models, "run", command)  # add_parser reads `run` when called
    return cli.main(["models"])


@pytest.mark.parametrize("error", [InputError("bad value"), NotFoundError("x: no such file"),
                                   OutputError("y: is a file, not a folder")])
def test_user_error_is_one_line(monkeypatch, capsys, error):
    assert _main_with(monkeypatch, error) == 2
    assert capsys.readouterr().err == f"pafpose: error: {error}\n"


@pytest.mark.parametrize("error", [RuntimeError("a bug"), ValueError("a bug"),
                                   KeyError("a bug"), OSError("a bug")])
def test_unexpected_exception_is_not_swallowed(monkeypatch, capsys, error):
    with pytest.raises(type(error), match="a bug"):
        _main_with(monkeypatch, error)
    assert "pafpose: error" not in capsys.readouterr().err


def test_interrupt_exits_130(monkeypatch, capsys):
    assert _main_with(monkeypatch, KeyboardInterrupt()) == 130
    assert capsys.readouterr().err == "pafpose: interrupted\n"


def test_missing_serve_extra_is_one_line(monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_fastapi(name, *args, **kwargs):
        if name == "serve" or name.startswith(("pafpose.serve", "fastapi")):
            error = ImportError("no fastapi")
            error.name = "fastapi"
            raise error
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fastapi)
    assert cli.main(["serve"]) == 2
    assert capsys.readouterr().err == (
        "pafpose: error: 'pafpose serve' needs the serve extra (fastapi is missing): "
        "pip install '.[serve]' in the pafpose checkout\n")
