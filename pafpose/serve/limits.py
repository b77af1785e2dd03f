"""Server limits and reading an image upload from a request: size caps and one-line errors."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartParser
from starlette.requests import ClientDisconnect

from ..defaults import available_cpus
from ..errors import InputError
from ..images import DEFAULT_MAX_PIXELS

#: Default limit on a request body, in bytes.
DEFAULT_MAX_BODY = 20_000_000
#: Default seconds to receive a whole request (a 20 MB body at ~3 Mbit/s).
DEFAULT_REQUEST_TIMEOUT = 60.0
#: Default seconds an idle kept-alive connection stays open (uvicorn's default).
DEFAULT_KEEP_ALIVE = 5.0
#: Default connections open at once (each may buffer a body up to the body limit).
DEFAULT_MAX_CONNECTIONS = 32


@dataclass(frozen=True)
class ServeConfig:
    """Limits of the HTTP service (sizes in bytes and pixels; queue in requests)."""

    max_body: int = DEFAULT_MAX_BODY
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int | None = None  # requests run at once; None: min(2, CPUs)
    queue: int | None = None  # requests waiting for a worker; None: 4 x CPUs
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT  # s to receive a request (headers, body)
    keep_alive: float = DEFAULT_KEEP_ALIVE  # s an idle kept-alive connection stays open
    max_connections: int = DEFAULT_MAX_CONNECTIONS  # open at once; requests beyond get 503
    cors_origins: tuple[str, ...] = ()  # origins browsers may call from; () = no CORS

    def __post_init__(self) -> None:
        if self.workers is None:
            object.__setattr__(self, "workers", min(2, available_cpus()))
        if self.queue is None:
            object.__setattr__(self, "queue", 4 * available_cpus())
        if self.max_body < 1 or self.max_pixels < 1:
            raise InputError("the body and pixel limits must be positive")
        if self.workers < 1 or self.queue < 0:
            raise InputError("workers must be >= 1 and the queue >= 0")
        if not (self.request_timeout > 0 and self.keep_alive > 0):
            raise InputError("the timeouts must be positive")
        if self.max_connections < 1:
            raise InputError("max connections must be >= 1")


def _too_large(size: int | str, limit: int) -> HTTPException:
    return HTTPException(413, f"request body is {size} bytes, above the limit of {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) more than `limit` bytes before reading them all."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise HTTPException(400, "invalid Content-Length header")
        if int(length) > limit:
            raise _too_large(length, limit)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(f"more than {limit}", limit)
            chunks.append(chunk)
    except ClientDisconnect:  # closed by the client or the request deadline: nobody to answer
        raise HTTPException(400, "the client disconnected before the body was complete") from None
    return b"".join(chunks)


async def _once(data: bytes) -> AsyncGenerator[bytes, None]:
    yield data


async def image_bytes(request: Request, limit: int) -> bytes:
    """The uploaded image: the multipart field `image`, or else the raw body."""
    body = await read_body(request, limit)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        parser = MultiPartParser(request.headers, _once(body), max_files=4, max_fields=16)
        try:
            form = await parser.parse()
        except Exception:  # any parse failure is the client's: a one-line 400
            raise HTTPException(400, "malformed multipart/form-data body") from None
        try:
            uploads = form.getlist("image")
            if len(uploads) > 1:
                raise HTTPException(400, f"{len(uploads)} parts named 'image': send one image "
                                         "per request")
            upload = uploads[0] if uploads else None
            if upload is None:
                raise HTTPException(422, "multipart field 'image' is missing")
            if not isinstance(upload, UploadFile):
                raise HTTPException(422, "multipart field 'image' must be a file")
            body = await upload.read()
        finally:
            await form.close()
    if not body:
        raise HTTPException(400, "empty image: send the image as the body or the field 'image'")
    return body
