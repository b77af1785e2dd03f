"""The HTTP service, run as a user runs it: `pafpose serve` in a subprocess on a loopback port."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest

from .conftest import MEDIA, need

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")

# the two players of basketball1.png (640x480): the left one within x < 200, the right one x > 430
LEFT_PLAYER_MAX_X, RIGHT_PLAYER_MIN_X = 200, 430


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = 120):
    """One HTTP request on a fresh connection: (status, headers, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()


def multipart(fields: dict[str, tuple[str, bytes]]) -> tuple[bytes, dict[str, str]]:
    """Encode {name: (filename, data)} as multipart/form-data: (body, headers)."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{fname}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
        for name, (fname, data) in fields.items()
    ]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def post_image(port: int, data: bytes, query: str = "", field: str = "image"):
    """POST an image as the multipart field `field`: (status, headers, body)."""
    body, headers = multipart({field: ("upload.bin", data)})
    return request(port, "POST", f"/v1/pose{query}", body, headers)


@contextmanager
def running_server(log: Path, *args: str, startup: float = 180) -> Iterator[int]:
    """Start `pafpose serve` on a free loopback port with `args`; yield the port; stop it."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pafpose", "serve", "--port", str(port), *args],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            deadline = time.monotonic() + startup
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()}")
                try:
                    if request(port, "GET", "/healthz", timeout=5)[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"server not ready after {startup} s:\n{log.read_text()}")
                time.sleep(0.25)
            yield port
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def server(thin_pb, tmp_path_factory) -> Iterator[int]:
    """A server with small limits: 1 MB bodies, 1 MP images."""
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with running_server(log, "--max-body-mb", "1", "--max-pixels", "1000000",
                        "--workers", "2", "--queue", "16") as port:
        yield port
    assert "Traceback" not in log.read_text()


def people_in_bands(people: list[dict]) -> tuple[bool, bool]:
    """Whether a person (>= 4 parts) lies wholly left / wholly right of the players' bands."""
    xs = [np.array([x for x, _, s in p["openpose18"] if s > 0]) for p in people]
    left = any(len(x) >= 4 and x.max() < LEFT_PLAYER_MAX_X for x in xs)
    right = any(len(x) >= 4 and x.min() > RIGHT_PLAYER_MIN_X for x in xs)
    return left, right


def test_health_docs_page_and_skeleton(server):
    status, _, body = request(server, "GET", "/healthz")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok"
    assert health["workers"] == 2 and health["queue"] == 16 and health["in_flight"] == 0
    status, _, body = request(server, "GET", "/openapi.json")
    spec = json.loads(body)["paths"]["/v1/pose"]["post"]
    assert set(spec["requestBody"]["content"]) >= {"multipart/form-data", "image/*"}
    assert {"200", "400", "413", "415", "422", "503"} <= set(spec["responses"])
    # the API docs pages load their scripts from the server itself, not from a CDN
    for page, script in (("/docs", "/static-offline-docs/swagger-ui-bundle.js"),
                         ("/redoc", "/static-offline-docs/redoc.standalone.js")):
        status, headers, body = request(server, "GET", page)
        assert status == 200 and script.encode() in body, page
        assert b"cdn." not in body.lower(), page
        status, headers, body = request(server, "GET", script)
        assert status == 200 and "javascript" in headers["content-type"] and len(body) > 100_000
    status, headers, body = request(server, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'id="canvas"' in body and b"getUserMedia" in body and b"v1/pose" in body
    status, _, body = request(server, "GET", "/v1/skeleton")
    sk = json.loads(body)
    assert len(sk["openpose18"]) == 18 and len(sk["coco17"]) == 17
    assert len(sk["limbs"]) == len(sk["colors_rgb"]) - 1 == 17


def test_pose_json_basketball_both_players(server):
    status, headers, body = post_image(server, need(MEDIA / "basketball1.png").read_bytes())
    assert status == 200, body
    doc = json.loads(body)
    assert doc["image"] == {"width": 640, "height": 480}
    assert doc["count"] == len(doc["people"]) == int(headers["x-people"]) >= 2
    assert people_in_bands(doc["people"]) == (True, True)
    for person in doc["people"]:
        op, coco = np.array(person["openpose18"]), np.array(person["coco17"])
        assert op.shape == (18, 3) and coco.shape == (17, 3)
        assert coco[5].tolist() == op[5].tolist()  # left shoulder is OpenPose part 5
        assert coco[0].tolist() == op[0].tolist()  # nose
        found = op[op[:, 2] > 0]
        x, y, w, h = person["bbox"]
        assert found[:, 0].min() == pytest.approx(x, abs=0.02)
        assert found[:, 1].max() == pytest.approx(y + h, abs=0.02)
        assert 0 < person["score"]
    assert set(doc["timings_ms"]) == {"queue", "decode", "inference", "total"}
    assert "inference;dur=" in headers["server-timing"]


def test_raw_body_and_multipart_agree_and_headers_are_not_trusted(server):
    data = need(MEDIA / "messi5.jpg").read_bytes()
    _, _, multi = post_image(server, data)
    # the raw body, labelled wrongly: the content decides, not the Content-Type header
    status, _, raw = request(server, "POST", "/v1/pose", data, {"Content-Type": "text/plain"})
    assert status == 200
    a, b = json.loads(multi), json.loads(raw)
    assert a["image"] == b["image"] == {"width": 548, "height": 342}
    assert a["count"] >= 1 and a["people"] == b["people"]
    status, _, body = request(server, "POST", "/v1/pose", b"GIF89a not really",
                              {"Content-Type": "image/png"})
    assert status == 415


def test_render_returns_annotated_png(server):
    path = need(MEDIA / "basketball1.png")
    status, headers, body = post_image(server, path.read_bytes(), "?render=1")
    assert status == 200 and headers["content-type"] == "image/png"
    drawn = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    original = cv2.imread(str(path))
    assert drawn.shape == original.shape
    changed = np.any(drawn != original, axis=2)
    assert changed[:, :LEFT_PLAYER_MAX_X].sum() > 300
    assert changed[:, RIGHT_PLAYER_MIN_X:].sum() > 300
    assert int(headers["x-people"]) >= 2


def _png_header_only(width: int, height: int) -> bytes:
    """A real PNG of a black image (tiny file, many pixels)."""
    return cv2.imencode(".png", np.zeros((height, width), np.uint8))[1].tobytes()


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("empty body", 400, "empty image"),
        ("empty file field", 400, "empty image"),
        ("malformed multipart", 400, "malformed multipart"),
        ("text", 415, "not an image"),
        ("truncated jpeg", 415, "truncated JPEG"),
        ("body too large", 413, "above the limit of 1000000 bytes"),
        ("chunked body too large", 413, "above the limit of 1000000 bytes"),
        ("png above pixel limit", 413, "pixel limit"),
        ("webp above pixel limit", 413, "pixel limit"),  # no size in the header we read
        ("no image field", 422, "'image' is missing"),
        ("image field not a file", 422, "must be a file"),
        ("bad query", 422, "render"),
        ("wrong method", 405, "Method Not Allowed"),
    ],
)
def test_errors_are_one_line_json(server, case, status, message):
    jpeg = need(MEDIA / "messi5.jpg").read_bytes()
    if case == "empty body":
        res = request(server, "POST", "/v1/pose", b"")
    elif case == "empty file field":
        res = post_image(server, b"")
    elif case == "malformed multipart":
        res = request(server, "POST", "/v1/pose", b"garbage, no parts",
                      {"Content-Type": "multipart/form-data; boundary=xyz"})
    elif case == "text":
        res = post_image(server, b"hello, this is text")
    elif case == "truncated jpeg":
        res = post_image(server, jpeg[: len(jpeg) // 2])
    elif case == "body too large":
        res = request(server, "POST", "/v1/pose", os.urandom(1_500_000))
    elif case == "chunked body too large":
        chunks = [os.urandom(100_000) for _ in range(15)]
        res = _chunked_request(server, chunks)
    elif case == "png above pixel limit":
        res = post_image(server, _png_header_only(2000, 1000))
    elif case == "webp above pixel limit":
        webp = cv2.imencode(".webp", np.zeros((1100, 1000, 3), np.uint8),
                            [cv2.IMWRITE_WEBP_QUALITY, 101])[1].tobytes()
        res = post_image(server, webp)
    elif case == "no image field":
        body, headers = multipart({"picture": ("a.jpg", jpeg)})
        res = request(server, "POST", "/v1/pose", body, headers)
    elif case == "image field not a file":
        body = (b'--b\r\nContent-Disposition: form-data; name="image"\r\n\r\nhello\r\n--b--\r\n')
        res = request(server, "POST", "/v1/pose", body,
                      {"Content-Type": "multipart/form-data; boundary=b"})
    elif case == "bad query":
        res = post_image(server, jpeg, "?render=maybe")
    else:
        res = request(server, "GET", "/v1/pose")
    got, headers, body = res
    assert got == status, (case, body)
    assert headers["content-type"] == "application/json"
    detail = json.loads(body)["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
    assert message in detail


def _chunked_request(port: int, chunks: list[bytes]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/v1/pose", body=iter(chunks), encode_chunked=True,
                     headers={"Content-Type": "image/jpeg"})
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()


def test_concurrent_clients_none_lost_same_results(server):
    images = [need(MEDIA / "basketball1.png").read_bytes(), need(MEDIA / "messi5.jpg").read_bytes()]
    reference = [json.loads(post_image(server, data)[2])["people"] for data in images]
    before = json.loads(request(server, "GET", "/healthz")[2])
    results: dict[int, tuple[int, list]] = {}

    def client(k: int) -> None:
        for j in range(3):
            i = (k + j) % 2
            status, _, body = post_image(server, images[i])
            results[k * 3 + j] = (status, i, json.loads(body).get("people"))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(results) == 24
    for status, i, people in results.values():
        assert status == 200
        assert people == reference[i]  # the shared model gives the same answer under load
    after = json.loads(request(server, "GET", "/healthz")[2])
    assert after["completed"] - before["completed"] == 24
    assert after["in_flight"] == 0 and after["rejected"] == before["rejected"]


def test_full_queue_answers_503_with_retry_after(thin_pb, tmp_path):
    data = need(MEDIA / "basketball1.png").read_bytes()
    n = 6
    barrier = threading.Barrier(n)
    results: list[tuple[int, dict, bytes]] = []

    def client() -> None:
        barrier.wait()
        results.append(post_image(port, data, "?render=1"))

    with running_server(tmp_path / "server.log", "--workers", "1", "--queue", "0") as port:
        threads = [threading.Thread(target=client) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        statuses = sorted(r[0] for r in results)
        assert len(results) == n and set(statuses) == {200, 503}, statuses
        for status, headers, body in results:
            if status == 503:
                assert int(headers["retry-after"]) >= 1
                assert "server busy" in json.loads(body)["detail"]
        assert post_image(port, data)[0] == 200  # served again once the queue has room
        health = json.loads(request(port, "GET", "/healthz")[2])
        assert health["rejected"] == statuses.count(503)
        assert health["completed"] == statuses.count(200) + 1


# ---- connection limits: timeouts, concurrent connections, one image per request, CORS ----

ALLOWED_ORIGIN = "https://app.example.org"


@pytest.fixture(scope="module")
def strict_server(thin_pb, tmp_path_factory) -> Iterator[int]:
    """A server with short timeouts, 2 connections at most and CORS for one origin."""
    log = tmp_path_factory.mktemp("serve") / "strict.log"
    with running_server(log, "--timeout-keep-alive", "1", "--request-timeout", "2",
                        "--max-connections", "2", "--cors-origins", ALLOWED_ORIGIN) as port:
        yield port
    text = log.read_text()
    assert "Traceback" not in text
    assert "2 connections, requests received within 2 s, idle connections closed after 1 s, " \
           f"CORS {ALLOWED_ORIGIN}" in text


def _closed_after(sock: socket.socket, limit: float = 30) -> float:
    """Seconds until the server closes the connection (reads and drops what it sends)."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def test_limits_idle_connections_are_closed(strict_server):
    # a connection that never sends a request: closed by the request deadline (2 s)
    with socket.create_connection(("127.0.0.1", strict_server)) as idle:
        assert 1.5 < _closed_after(idle) < 20
    # a kept-alive connection idle after a response: closed by the keep-alive timeout (1 s)
    with socket.create_connection(("127.0.0.1", strict_server)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(30)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        assert 0.5 < _closed_after(sock) < 20


def test_limits_slow_body_dribble_is_cut_off(strict_server):
    jpeg = need(MEDIA / "messi5.jpg").read_bytes()
    with socket.create_connection(("127.0.0.1", strict_server)) as sock:
        sock.sendall(b"POST /v1/pose HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                     + f"Content-Length: {len(jpeg)}\r\n\r\n".encode())
        start, sent = time.monotonic(), 0
        try:
            while sent < 200 and time.monotonic() - start < 30:  # 200 bytes, one per 0.1 s
                sock.sendall(jpeg[sent : sent + 1])
                sent += 1
                time.sleep(0.1)
                sock.setblocking(False)
                try:
                    if sock.recv(65536) == b"":
                        break
                except BlockingIOError:
                    pass
                finally:
                    sock.setblocking(True)
        except (BrokenPipeError, ConnectionResetError):
            pass
        # the deadline (2 s) cut the request off long before its body was sent
        assert sent < 100, sent
        assert _closed_after(sock, 5) < 5
    assert request(strict_server, "GET", "/healthz")[0] == 200  # still serving


def test_limits_connections_beyond_the_limit_get_503(strict_server):
    with socket.create_connection(("127.0.0.1", strict_server)) as first:
        first.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # incomplete: stays open
        with socket.create_connection(("127.0.0.1", strict_server)) as second:
            second.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            time.sleep(0.3)  # both accepted by the server
            status, _, _ = request(strict_server, "GET", "/healthz", timeout=10)
            assert status == 503
    time.sleep(0.3)
    assert request(strict_server, "GET", "/healthz", timeout=10)[0] == 200


def test_limits_two_image_parts_give_400(server):
    jpeg = need(MEDIA / "messi5.jpg").read_bytes()
    boundary = "b0undary"
    part = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"'
            "\r\nContent-Type: image/jpeg\r\n\r\n").encode() + jpeg + b"\r\n"
    body = part + part + f"--{boundary}--\r\n".encode()
    status, headers, data = request(server, "POST", "/v1/pose", body,
                                    {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(data)["detail"] == "2 parts named 'image': send one image per request"


def _preflight(port: int, origin: str) -> tuple[int, dict[str, str], bytes]:
    return request(port, "OPTIONS", "/v1/pose", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})


def test_limits_cors_off_by_default(server):
    status, headers, _ = _preflight(server, ALLOWED_ORIGIN)
    assert status == 405 and "access-control-allow-origin" not in headers
    _, headers, _ = request(server, "GET", "/healthz", headers={"Origin": ALLOWED_ORIGIN})
    assert "access-control-allow-origin" not in headers


def test_limits_cors_for_the_given_origins_only(strict_server):
    status, headers, _ = _preflight(strict_server, ALLOWED_ORIGIN)
    assert status == 200 and headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in headers["access-control-allow-methods"]
    _, headers, _ = request(strict_server, "GET", "/healthz", headers={"Origin": ALLOWED_ORIGIN})
    assert headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    status, headers, _ = _preflight(strict_server, "https://evil.example.com")
    assert status == 400 and "access-control-allow-origin" not in headers
    _, headers, _ = request(strict_server, "GET", "/healthz",
                            headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in headers


@pytest.mark.parametrize(("args", "message"), [
    (["--workers", "0"], "expected a worker count from 1 to 64"),
    (["--workers", "1000"], "expected a worker count from 1 to 64"),
    (["--queue", "-1"], "expected a queue length from 0 to 10000"),
    (["--max-body-mb", "0"], "expected a positive number"),
    (["--max-body-mb", "1e9"], "expected at most 4096 MB"),
    (["--request-timeout", "0"], "expected a positive number"),
    (["--timeout-keep-alive", "nan"], "expected a positive number"),
    (["--max-connections", "0"], "expected a connection count from 1 to 100,000"),
])
def test_serve_bad_options_one_line_error(args, message):
    res = subprocess.run([sys.executable, "-m", "pafpose", "serve", *args],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr


class _FailingEstimator:
    """Warms up, then fails: stands for an unexpected fault inside the server."""

    def inference(self, image: np.ndarray) -> list:
        if image.shape == (368, 432, 3) and not image.any():
            return []
        raise RuntimeError("secret internal detail")


def test_unexpected_failure_is_a_plain_500():
    import uvicorn

    from pafpose.serve import ServeConfig, create_app

    port = free_port()
    app = create_app(_FailingEstimator(), ServeConfig(workers=1, queue=1))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        status, headers, body = post_image(port, need(MEDIA / "messi5.jpg").read_bytes())
        assert status == 500 and headers["content-type"] == "application/json"
        assert json.loads(body) == {"detail": "internal server error"}
        assert json.loads(request(port, "GET", "/healthz")[2])["in_flight"] == 0
    finally:
        server.should_exit = True
        thread.join(30)


def _server_memory_mb(port: int) -> tuple[float, float]:
    """(resident, peak resident) MB of the `pafpose serve` process listening on `port`."""
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            if b"serve" in cmd and str(port).encode() in cmd:
                status = dict(line.split(":", 1) for line in
                              (proc / "status").read_text().splitlines() if ":" in line)
                return tuple(int(status[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
        except OSError:
            continue
    pytest.fail(f"no server process found for port {port}")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_extreme_images_bounded_and_memory_returns(thin_pb, tmp_path):
    with running_server(tmp_path / "server.log", "--workers", "1") as port:
        photo = need(MEDIA / "basketball1.png").read_bytes()
        for _ in range(2):  # warm: the allocator's pools at their working size
            assert post_image(port, photo)[0] == 200
        baseline, _ = _server_memory_mb(port)
        for w, h in [(3, 2000), (2000, 3), (6000, 40), (40, 6000)]:
            pixels = np.random.default_rng(w).integers(0, 255, (h, w, 3), np.uint8)
            status, _, body = post_image(port, cv2.imencode(".png", pixels)[1].tobytes())
            assert status == 200, body
            doc = json.loads(body)
            assert doc["image"] == {"width": w, "height": h} and doc["count"] == 0
        assert post_image(port, photo)[0] == 200
        rss, peak = _server_memory_mb(port)
    assert peak < 1000, peak  # unbounded, one 3x2000 request took > 10 GB
    assert rss < baseline + 150, (baseline, rss)
    assert "Traceback" not in (tmp_path / "server.log").read_text()
