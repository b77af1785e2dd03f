"""HTTP service and browser demo (optional extra `serve`: FastAPI + uvicorn)."""

from __future__ import annotations

from .app import check_port, create_app, serve
from .limits import ServeConfig
from .pool import QueueFull, WorkerPool

__all__ = ["QueueFull", "ServeConfig", "WorkerPool", "check_port", "create_app", "serve"]
