"""`pafpose train`, `export` and `train-sample`: training in PyTorch, ONNX export, a sample.

The train flags are built from the fields of :class:`~pafpose.train.config.TrainConfig`.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path

from ..defaults import DEFAULT_INPUT_SIZE
from ..train.config import TrainConfig
from .options import int_in, size


def _shown(value: object) -> str:
    """A default as the help shows it: 432x368, 100 (not 100.0), train2017."""
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _optional_of(hint: typing.Any) -> typing.Any:
    """`int` for `int | None`; any other annotation as it is."""
    args = typing.get_args(hint)
    if type(None) in args:
        return next(t for t in args if t is not type(None))
    return hint


def add_config_flags(p: argparse.ArgumentParser, config: type = TrainConfig) -> None:
    """One flag per field of `config` that has help: --field-name, its type from the field's
    annotation, its default and help from the field."""
    hints = typing.get_type_hints(config)
    for f in dataclasses.fields(config):
        meta = f.metadata
        if "help" not in meta:
            continue
        flag = meta.get("flag", f.name).replace("_", "-")
        name = f"--no-{flag}" if meta.get("negate") else f"--{flag}"
        kind = _optional_of(hints[f.name])
        kw: dict[str, typing.Any] = {"dest": f.name}
        if f.default is dataclasses.MISSING:
            kw["required"] = True
        else:
            kw["default"] = f.default
        if kind is bool:
            kw["action"] = "store_false" if meta.get("negate") else "store_true"
        elif "bounds" in meta:
            kw["type"] = int_in(*meta["bounds"])
        elif kind == tuple[int, int]:
            kw["type"] = size
        elif kind in (int, float):
            kw["type"] = kind
        for key in ("metavar", "choices"):
            if key in meta:
                kw[key] = meta[key]
        kw["help"] = meta["help"].replace("{default}", _shown(f.default))
        p.add_argument(name, **kw)


def config_from_args(args: argparse.Namespace, config: type = TrainConfig):
    """The `config` dataclass holding the values of its flags."""
    return config(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config)
                     if "help" in f.metadata})


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The train, export and train-sample commands."""
    p = sub.add_parser("train", help="train or fine-tune a network on COCO (PyTorch)")
    add_config_flags(p)
    p.set_defaults(func=run)

    p = sub.add_parser("export", help="export a training checkpoint to ONNX")
    p.add_argument("checkpoint", help="a checkpoint written by `pafpose train` (last.pt)")
    p.add_argument("--output", required=True, metavar="PATH", help="the .onnx file to write")
    p.set_defaults(func=run_export)

    p = sub.add_parser("train-sample",
                       help="picture of an augmented training sample and its targets")
    p.add_argument("--coco-dir", required=True, metavar="DIR", help="COCO folder (as train)")
    p.add_argument("--split", default="train2017", help="(default train2017)")
    p.add_argument("--input", type=size, default=DEFAULT_INPUT_SIZE, metavar="WxH",
                   help="input size (default 432x368)")
    p.add_argument("--index", type=int, default=0, help="image index among those with people")
    p.add_argument("--epoch", type=int, default=0, help="epoch (changes the augmentation)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--no-augment", action="store_true", help="the unaugmented sample")
    p.add_argument("--output", type=Path, default=Path("sample.png"), metavar="PATH",
                   help="picture to write (default sample.png)")
    p.set_defaults(func=run_train_sample)


def run(args: argparse.Namespace) -> int:
    """Train or fine-tune a pose network on COCO (alone, or one process of a torchrun job)."""
    from ..train import require_torch

    require_torch()
    from ..train.loop import train

    result = train(config_from_args(args))
    if result.is_main:
        print(result.describe())
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Export a training checkpoint to ONNX for PoseEstimator and every command."""
    from ..train import require_torch

    require_torch()
    from ..train.export import export_checkpoint

    print(export_checkpoint(args.checkpoint, args.output))
    return 0


def run_train_sample(args: argparse.Namespace) -> int:
    """Write a picture of one augmented training sample and its targets."""
    from ..train.data import write_sample_figure

    print(write_sample_figure(args.coco_dir, args.output, args.split, args.input, args.index,
                              args.epoch, args.seed, augment=not args.no_augment))
    return 0
