"""uvicorn's h11 protocol with a deadline on receiving each request (headers and body).

uvicorn's own timeouts do not cover a request being received: its keep-alive timer runs only
between requests and restarts on every byte, so a client dribbling a request (slowloris)
holds a connection for ever (uvicorn issue #157: no --timeout-request-start / -complete).
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("uvicorn.error")

_RECEIVING = (h11.IDLE, h11.SEND_BODY)  # the client's states while a request is incomplete


class DeadlineH11Protocol(H11Protocol):
    """Closes the connection when a request is not wholly received within `request_timeout`."""

    #: Seconds from the connection (or the previous response) to the request's last byte.
    request_timeout: float = 60.0

    _deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing() and self.conn.their_state in _RECEIVING:
            prefix = f"{self.client[0]}:{self.client[1]} - " if self.client else ""
            log.warning("%srequest not received within %g s: connection closed", prefix,
                        self.request_timeout)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the deadline of the first request."""
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Stop the deadline once the whole request is in."""
        super().data_received(data)
        if self.conn.their_state not in _RECEIVING:
            self._disarm()

    def on_response_complete(self) -> None:
        """Start the deadline of the next request on a kept-alive connection."""
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state in _RECEIVING:
            self._arm()
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        """No deadline on a closed connection."""
        self._disarm()
        super().connection_lost(exc)


def deadline_protocol(request_timeout: float) -> type[DeadlineH11Protocol]:
    """The protocol class with the given deadline (seconds), for uvicorn.Config(http=...)."""
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"request_timeout": request_timeout})
