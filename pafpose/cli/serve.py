"""`pafpose serve`: the HTTP API (POST /v1/pose) and the browser demo."""

from __future__ import annotations

import argparse

from ..errors import MissingDependencyError
from . import options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="HTTP API (POST /v1/pose) and a browser demo at /")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=options.int_in(0, 65535, "a port"), default=8000,
                   help="port (default 8000; 0 = any free port)")
    options.add_model_args(p)
    p.add_argument("--workers", type=options.WORKERS,
                   help="requests run at once (default: min(2, CPUs))")
    p.add_argument("--queue", type=options.int_in(0, 10_000, "a queue length"),
                   help="requests that may wait for a worker; more get 503 (default: 4 x CPUs)")
    p.add_argument("--max-body-mb", type=options.positive_at_most(4096, "MB"), default=20.0,
                   metavar="MB", help="refuse larger request bodies (default 20)")
    p.add_argument("--max-connections", type=options.int_in(1, 100_000, "a connection count"),
                   default=32, metavar="N",
                   help="connections open at once; requests beyond get 503 (default 32)")
    p.add_argument("--request-timeout", type=options.positive, default=60.0, metavar="S",
                   help="close a connection whose request (headers and body) is not received "
                        "within S seconds (default 60)")
    p.add_argument("--timeout-keep-alive", type=options.positive, default=5.0, metavar="S",
                   help="close an idle kept-alive connection after S seconds (default 5)")
    p.add_argument("--cors-origins", default="", metavar="URL,..",
                   help="origins whose web pages may call the API, e.g. "
                        "https://app.example.org, or * (default: none, CORS off)")
    p.add_argument("--log-level", default="info",
                   choices=("critical", "error", "warning", "info", "debug"),
                   help="server log detail (default info)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve the HTTP API and the browser demo."""
    try:
        from ..serve import ServeConfig, check_port, serve
    except ImportError as exc:
        raise MissingDependencyError(
            f"'pafpose serve' needs the serve extra ({exc.name} is missing): "
            "pip install '.[serve]' in the pafpose checkout") from None
    check_port(args.host, args.port)
    origins = tuple(o.strip().rstrip("/") for o in args.cors_origins.split(",") if o.strip())
    config = ServeConfig(max_body=int(args.max_body_mb * 1e6), max_pixels=args.max_pixels,
                         workers=args.workers, queue=args.queue,
                         request_timeout=args.request_timeout, keep_alive=args.timeout_keep_alive,
                         max_connections=args.max_connections, cors_origins=origins)
    serve(options.estimator(args), config, host=args.host, port=args.port,
          model_name=str(args.model), log_level=args.log_level)
    return 0
