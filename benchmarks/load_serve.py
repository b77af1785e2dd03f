"""Load on the HTTP service: N requests from C concurrent clients over loopback.

Prints throughput and latency percentiles, and checks that every request was answered and
counted by the server (none failed, none lost). Starts its own `pafpose serve` unless --url
is given. Example:

    python benchmarks/load_serve.py --requests 200 --clients 8
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np
from tqdm import tqdm

SHARED_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "media"
DEFAULT_IMAGE = SHARED_MEDIA / "basketball1.png"


class Client:
    """One keep-alive connection posting raw image bodies."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=300)

    def get_json(self, path: str) -> dict:
        self.conn.request("GET", path)
        return json.loads(self.conn.getresponse().read())

    def post(self, body: bytes) -> tuple[int, dict]:
        try:
            self.conn.request("POST", "/v1/pose", body=body,
                              headers={"Content-Type": "application/octet-stream"})
            res = self.conn.getresponse()
            return res.status, json.loads(res.read())
        except (OSError, http.client.HTTPException):
            self.conn.close()  # a fresh connection for the next request
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
            raise


def start_server(extra: list[str]) -> tuple[subprocess.Popen, int]:
    """`pafpose serve` on a free loopback port; returns once /healthz answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "pafpose", "serve", "--port", str(port),
           "--log-level", "warning", *extra]
    proc = subprocess.Popen(cmd)
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"load_serve: the server exited with {proc.returncode}")
        try:
            Client("127.0.0.1", port).get_json("/healthz")
            return proc, port
        except OSError:
            time.sleep(0.25)
    proc.kill()
    sys.exit("load_serve: the server did not start")


def run_load(host: str, port: int, body: bytes, requests: int, clients: int) -> dict:
    """Send `requests` posts from `clients` threads; gather statuses and latencies."""
    next_index = iter(range(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    inference: list[float] = []
    statuses: dict[str, int] = {}
    bar = tqdm(total=requests, unit="req", file=sys.stderr)

    def worker() -> None:
        client = Client(host, port)
        while True:
            with lock:
                if next(next_index, None) is None:
                    return
            start = time.perf_counter()
            try:
                status, doc = client.post(body)
                key = str(status)
            except (OSError, http.client.HTTPException) as exc:
                key, doc = type(exc).__name__, {}
            elapsed = time.perf_counter() - start
            with lock:
                statuses[key] = statuses.get(key, 0) + 1
                if key == "200":
                    latencies.append(elapsed)
                    inference.append(doc["timings_ms"]["inference"])
                bar.update()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    bar.close()
    return {"wall": wall, "latencies": latencies, "inference": inference, "statuses": statuses}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (default: start one on loopback)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--warmup", type=int, default=4, help="requests sent first, not counted")
    parser.add_argument("server_args", nargs="*",
                        help="after --: options for `pafpose serve` (e.g. -- --workers 1)")
    args = parser.parse_args()
    body = args.image.read_bytes()
    proc = None
    if args.url:
        url = urllib.parse.urlsplit(args.url)
        host, port = url.hostname or "127.0.0.1", url.port or 80
    else:
        proc, port = start_server(args.server_args)
        host = "127.0.0.1"
    try:
        probe = Client(host, port)
        for _ in range(args.warmup):
            probe.post(body)
        health = probe.get_json("/healthz")
        before = health["completed"]
        out = run_load(host, port, body, args.requests, args.clients)
        after = Client(host, port).get_json("/healthz")["completed"]
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    lat = np.array(out["latencies"]) * 1000
    ok = out["statuses"].get("200", 0)
    print(f"image {args.image.name} ({len(body)} bytes), {args.requests} requests, "
          f"{args.clients} clients, server: {health['workers']} workers, queue "
          f"{health['queue']}, {os.cpu_count()} CPUs")
    print(f"answers: {dict(sorted(out['statuses'].items()))}; counted by the server: "
          f"{after - before}")
    print(f"throughput: {ok / out['wall']:.2f} req/s over {out['wall']:.1f} s")
    if ok:
        p50, p90, p99 = np.percentile(lat, [50, 90, 99])
        print(f"latency ms: p50 {p50:.0f}  p90 {p90:.0f}  p99 {p99:.0f}  max {lat.max():.0f}"
              f"  (server inference median {np.median(out['inference']):.0f})")
    failed = args.requests - ok
    lost = args.requests - (after - before)
    print(f"failed: {failed}, lost: {lost}")
    return 1 if failed or lost else 0


if __name__ == "__main__":
    sys.exit(main())
