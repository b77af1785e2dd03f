"""The HTTP API (FastAPI): POST /v1/pose, GET /healthz, GET /v1/skeleton, the demo page at /."""

from __future__ import annotations

import errno
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import cv2
import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..draw import draw_humans
from ..errors import ImageError, ImageTooLargeError, OutputError
from ..human import Human
from ..images import decode_image
from ..skeleton import COCO17_NAMES, OPENPOSE_18, Skeleton
from .limits import ServeConfig, image_bytes
from .pool import QueueFull, WorkerPool
from .protocol import deadline_protocol

log = logging.getLogger("uvicorn.error")  # the server's own log


class ImageSize(BaseModel):
    """Width and height of the decoded image, in pixels."""

    width: int
    height: int


class Person(BaseModel):
    """One person: keypoints as [x, y, score] in image pixels (score 0 = not found), under the
    name of the model's skeleton (GET /v1/skeleton): openpose18, body25 or mpi15."""

    score: float
    bbox: list[float] = Field(description="x, y, width, height around the found keypoints")
    openpose18: list[list[float]] | None = Field(
        None, description="18 x [x, y, score], OpenPose-18 order (OpenPose-18 models)")
    body25: list[list[float]] | None = Field(
        None, description="25 x [x, y, score], BODY_25 order (BODY_25 models)")
    mpi15: list[list[float]] | None = Field(
        None, description="15 x [x, y, score], MPI-15 order (MPI models)")
    coco17: list[list[float]] = Field(description="17 x [x, y, score], COCO-17 order")


class PoseResponse(BaseModel):
    """The people found in one image and where the time went."""

    image: ImageSize
    count: int
    people: list[Person]
    timings_ms: dict[str, float] = Field(description="queue, decode, inference, total")


class ErrorResponse(BaseModel):
    """Every error: a one-line reason."""

    detail: str


@dataclass
class Estimate:
    """The outcome of one job on a worker."""

    size: tuple[int, int]
    humans: list[Human]
    timings: dict[str, float] = field(default_factory=dict)
    png: bytes | None = None


def skeleton_document(skeleton: Skeleton) -> dict[str, Any]:
    """What GET /v1/skeleton answers: the skeleton's name, its part names under that name,
    the COCO-17 names, the drawn limbs and the colours (limb k takes colour k)."""
    return {"name": skeleton.name, skeleton.name: list(skeleton.parts),
            "coco17": list(COCO17_NAMES),
            "limbs": [list(limb) for limb in skeleton.drawn_limbs],
            "colors_rgb": [list(c[::-1]) for c in skeleton.colors]}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def estimate(estimator: Any, data: bytes, max_pixels: int, render: bool, queued: float) -> Estimate:
    """Decode the image bytes, find the people, and draw them when asked (runs on a worker)."""
    t0 = time.perf_counter()
    image = decode_image(data, max_pixels)
    t1 = time.perf_counter()
    humans = estimator.inference(image)
    t2 = time.perf_counter()
    timings = {"queue": _ms(t0 - queued), "decode": _ms(t1 - t0), "inference": _ms(t2 - t1)}
    out = Estimate((image.shape[1], image.shape[0]), humans, timings)
    if render:
        ok, png = cv2.imencode(".png", draw_humans(image, humans))
        if not ok:  # pragma: no cover - PNG encoding of a BGR image does not fail
            raise RuntimeError("PNG encoding failed")
        out.png = png.tobytes()
        timings["render"] = _ms(time.perf_counter() - t2)
    return out


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
    return "; ".join(parts) or "invalid request"


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in (
        (400, "Empty body, malformed multipart data, or more than one 'image' part"),
        (413, "Body above the size limit, or image above the pixel limit"),
        (415, "The content is not a decodable image"),
        (422, "Missing multipart field 'image', or an invalid query parameter"),
        (503, "The work queue is full; see the Retry-After header"),
    )
}

_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {"type": "object", "required": ["image"],
                       "properties": {"image": {"type": "string", "format": "binary"}}},
        },
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "image/*": {"schema": {"type": "string", "format": "binary"}},
    },
}


def create_app(estimator: Any, config: ServeConfig | None = None, model_name: str = "") -> FastAPI:
    """The FastAPI application serving `estimator` (any object with .inference(image_bgr))."""
    config = config or ServeConfig()
    pool = WorkerPool(config.workers, config.queue)
    page = (files(__package__) / "static" / "index.html").read_text(encoding="utf-8")
    layout = skeleton_document(getattr(estimator, "skeleton", OPENPOSE_18))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        estimator.inference(np.zeros((368, 432, 3), np.uint8))  # warm up before serving
        log.info("pafpose %s: %d workers, queue %d, bodies up to %.1f MB, images up to %.1f MP,"
                 " %d connections, requests received within %g s, idle connections closed"
                 " after %g s, CORS %s; demo page at /, API docs at /docs",
                 model_name or "model", config.workers, config.queue, config.max_body / 1e6,
                 config.max_pixels / 1e6, config.max_connections, config.request_timeout,
                 config.keep_alive, ", ".join(config.cors_origins) or "off")
        yield
        pool.shutdown()

    # /docs and /redoc with their scripts served from the package (FastAPI's own pages load
    # them from a CDN, so they stay blank on machines without internet access).
    app = FastAPIOffline(
        title="pafpose", version=__version__, lifespan=lifespan,
        description="Multi-person 2D pose estimation (heatmaps + Part Affinity Fields).",
    )
    app.state.pool = pool
    app.state.config = config
    if config.cors_origins:  # browsers on other origins may call the API only when asked for
        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["*"],
                           expose_headers=["Server-Timing", "X-People", "Retry-After"])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(exc))

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        return _error(500, "internal server error")  # the server logs the traceback

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def demo_page() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz", summary="Liveness and load")
    async def healthz() -> dict[str, Any]:
        """The service is up; how busy it is."""
        return {"status": "ok", "model": model_name, "workers": pool.workers,
                "queue": pool.queue, "in_flight": pool.in_flight,
                "completed": pool.completed, "rejected": pool.rejected}

    @app.get("/v1/skeleton", summary="Keypoint names, drawn limbs and colours")
    async def skeleton() -> dict[str, Any]:
        """The layout of the loaded model's keypoints (its name is the key of each person's
        keypoints), and COCO-17's, for clients that draw."""
        return layout

    @app.post(
        "/v1/pose",
        summary="Find the people in an image",
        response_model=None,
        responses={200: {"model": PoseResponse,
                         "content": {"image/png": {"schema": {"type": "string",
                                                              "format": "binary"}}}},
                   **_ERRORS},
        openapi_extra={"requestBody": _REQUEST_BODY},
    )
    async def pose(
        request: Request,
        render: bool = Query(False, description="return the image with skeletons as PNG"),
    ) -> Response:
        """Send an image (multipart field `image`, or the raw body); get the people as JSON."""
        start = time.perf_counter()
        data = await image_bytes(request, config.max_body)
        try:
            result = await pool.run(estimate, estimator, data, config.max_pixels, render,
                                    time.perf_counter())
        except QueueFull as exc:
            raise HTTPException(503, str(exc),
                                headers={"Retry-After": str(exc.retry_after)}) from None
        except ImageError as exc:
            status = 413 if isinstance(exc, ImageTooLargeError) else 415
            raise HTTPException(status, f"{exc}") from None
        result.timings["total"] = _ms(time.perf_counter() - start)
        timing = ", ".join(f"{k};dur={v}" for k, v in result.timings.items())
        headers = {"Server-Timing": timing, "X-People": str(len(result.humans))}
        if result.png is not None:
            return Response(result.png, media_type="image/png", headers=headers)
        width, height = result.size
        return JSONResponse(
            {"image": {"width": width, "height": height}, "count": len(result.humans),
             "people": [h.to_dict() for h in result.humans], "timings_ms": result.timings},
            headers=headers,
        )

    return app


def check_port(host: str, port: int) -> None:
    """OutputError (an OSError), one line, now when the address cannot be listened on (in use,
    not ours), rather than after the model is loaded."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OutputError(f"cannot listen on {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(address)
        except OSError as exc:
            raise OutputError(f"cannot listen on {host}:{port}: {exc.strerror}"
                              + (" (another server uses it; pick another --port)"
                                 if exc.errno == errno.EADDRINUSE else "")) from None


def serve(
    estimator: Any,
    config: ServeConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    model_name: str = "",
    log_level: str = "info",
) -> None:
    """Serve the API with uvicorn until interrupted."""
    import uvicorn

    config = config or ServeConfig()
    app = create_app(estimator, config, model_name)
    # uvicorn answers 503 when the open connections (the new one included) reach its limit
    uvicorn.run(app, host=host, port=port, log_level=log_level,
                http=deadline_protocol(config.request_timeout),
                timeout_keep_alive=config.keep_alive,  # type: ignore[arg-type]
                limit_concurrency=config.max_connections + 1)
