"""Stop signals: SIGTERM / SIGHUP stop a run as Ctrl-C does, with exit status 128 + N."""

from __future__ import annotations

import signal

#: Signals that stop a run as Ctrl-C does: the work done is kept, the outputs are completed,
#: and the exit status is 128 + the signal's number (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))
_received: list[int] = []


def _on_stop_signal(signum: int, frame: object) -> None:
    """Turn SIGTERM / SIGHUP (and SIGINT) into KeyboardInterrupt, remembering which came."""
    _received.append(signum)
    raise KeyboardInterrupt


def install() -> dict[int, object]:
    """Route the stop signals to KeyboardInterrupt; return the handlers to put back."""
    _received.clear()
    previous = {}
    for signum in STOP_SIGNALS:
        try:
            previous[signum] = signal.signal(signum, _on_stop_signal)
        except ValueError:  # not the main thread: signals stay as they are
            break
    return previous


def restore(previous: dict[int, object]) -> None:
    """Put back the handlers `install` replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def stopped_by() -> int:
    """The signal that stopped the run (SIGINT when none was received: a plain Ctrl-C)."""
    return _received[0] if _received else signal.SIGINT


def interrupted_status() -> int:
    """Exit status of a run stopped by a signal: 128 + its number (130 for Ctrl-C)."""
    return 128 + stopped_by()
