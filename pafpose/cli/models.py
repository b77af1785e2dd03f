"""`pafpose models`: the named models and their cache state; `models fetch` downloads one."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..defaults import DEFAULT_MODEL
from . import options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models, or fetch one into the cache")
    p.add_argument("action", nargs="?", choices=("list", "fetch"), default="list")
    p.add_argument("names", nargs="*", help="model names to fetch (default mobilenet_thin)")
    options.add_license_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """List the named models and their cache state, or fetch one."""
    from ..models.fetch import cache_dir, cache_state, fetch_remote, fetch_source
    from ..models.registry import MODELS, ModelSpec, get_spec

    if args.action == "fetch":
        for name in args.names or [DEFAULT_MODEL]:
            spec = get_spec(name)
            if isinstance(spec, ModelSpec):
                paths = [fetch_source(spec)]
            else:
                paths = options.with_license(
                    lambda accepted, spec=spec: fetch_remote(spec, accept_license=accepted),
                    args.accept_license)
            print(f"{name}: {', '.join(map(str, paths))}")
        return 0
    home, cache = str(Path.home()), str(cache_dir())
    print("cache:", "~" + cache[len(home):] if cache.startswith(home + "/") else cache)
    for spec in MODELS.values():
        state = cache_state(spec)
        print(f"{spec.name:20s} {state:11s} {spec.description} [{spec.license}]")
    print(precision_summary())
    return 0


def precision_summary() -> str:
    """What --precision auto picks with the default backend on this CPU, and why (one line)."""
    from ..bench import precision_line
    from ..runtime import choose_precision, pick_backend

    backend = pick_backend("auto")
    choice = choose_precision(backend)
    return f"backend auto -> {backend}; " + precision_line(choice.precision, choice.reason)
