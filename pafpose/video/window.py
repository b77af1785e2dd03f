"""A window for live results: OpenCV's own when it has GUI support, else a Tk window.

The default install carries OpenCV's headless build (no GUI), so on a desktop the window comes
from Tk (Python's standard tkinter) unless a GUI build of OpenCV is installed. Both close on
q, Esc or the window's close button.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from typing import Protocol

import cv2
import numpy as np

TITLE = "pafpose"
_QUIT_KEYS = (ord("q"), 27)  # q, Esc


class Window(Protocol):
    """What the video runner needs of a window."""

    backend: str

    def show(self, image: np.ndarray) -> bool:
        """Show a BGR image; False once the user asked to quit (q, Esc, window closed)."""
        ...

    def close(self) -> None:
        """Close the window (safe to call twice)."""
        ...


def x_display_reachable(display: str, timeout: float = 1.0) -> bool:
    """Whether an X server answers at `display` ("[host]:N[.S]"): its socket accepts a
    connection. (A GUI build of OpenCV aborts the whole process when it cannot reach one.)"""
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        return False
    if host in ("", "unix"):
        if sys.platform.startswith("linux"):  # the abstract socket, then the file
            paths = [f"\0/tmp/.X11-unix/X{number}", f"/tmp/.X11-unix/X{number}"]
        else:
            paths = [f"/tmp/.X11-unix/X{number}"]
        for path in paths:
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(timeout)
                sock.connect(path)
                return True
        return False
    with contextlib.suppress(OSError), socket.create_connection(
            (host, 6000 + int(number)), timeout=timeout):
        return True
    return False


def _display_set() -> bool:
    """Whether an X display answers (on Linux and the BSDs; Wayland desktops provide one through
    XWayland, and both Tk and OpenCV's Qt build draw through X there)."""
    if sys.platform.startswith(("linux", "freebsd", "openbsd")):
        display = os.environ.get("DISPLAY")
        return bool(display) and x_display_reachable(display)
    return True


def _screen_size() -> tuple[int, int] | None:
    """The screen's (width, height) as Tk reports it; None without tkinter or a display."""
    try:
        import tkinter

        root = tkinter.Tk()
    except Exception:
        return None
    try:
        root.withdraw()
        return root.winfo_screenwidth(), root.winfo_screenheight()
    finally:
        root.destroy()


def fit(image: np.ndarray, max_size: tuple[int, int] | None) -> np.ndarray:
    """The image scaled down (area interpolation, aspect kept) to fit in max_size (w, h)."""
    if max_size is None:
        return image
    h, w = image.shape[:2]
    scale = min(max_size[0] / w, max_size[1] / h)
    if scale >= 1:
        return image
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _max_size(screen: tuple[int, int] | None) -> tuple[int, int] | None:
    """90% of the screen: room for the window's frame and the desktop's panels."""
    return None if screen is None else (int(screen[0] * 0.9), int(screen[1] * 0.9))


class OpenCVWindow:
    """A cv2.imshow window (needs a GUI build of OpenCV); frames larger than 90% of the screen
    (when tkinter can tell its size) are shown scaled down to fit."""

    backend = "opencv"

    def __init__(self, title: str = TITLE) -> None:
        self.title = title
        # No Qt toolbar: the window is the image. cv2.error here without GUI support.
        cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        self._open = True
        self.max_size = _max_size(_screen_size())

    def show(self, image: np.ndarray) -> bool:
        """Show a BGR image; False once the user asked to quit (q, Esc, window closed)."""
        cv2.imshow(self.title, fit(image, self.max_size))
        key = cv2.waitKey(1) & 0xFF
        closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        return key not in _QUIT_KEYS and not closed

    def close(self) -> None:
        """Close the window (safe to call twice)."""
        if self._open:
            self._open = False
            with contextlib.suppress(cv2.error):
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)


class TkWindow:
    """A Tk window showing frames as PPM images (tkinter from the standard library); frames
    larger than 90% of the screen are shown scaled down to fit."""

    backend = "tk"

    def __init__(self, title: str = TITLE) -> None:
        import tkinter

        self._tk = tkinter
        self.root = tkinter.Tk()  # tkinter.TclError when no display can be opened
        self.root.title(title)
        self.label = tkinter.Label(self.root, borderwidth=0)
        self.label.pack()
        self.photo: tkinter.PhotoImage | None = None
        self.quit = False
        self.root.protocol("WM_DELETE_WINDOW", self._on_quit)
        self.root.bind("<KeyPress-q>", self._on_quit)
        self.root.bind("<Escape>", self._on_quit)
        self.max_size = _max_size((self.root.winfo_screenwidth(),
                                   self.root.winfo_screenheight()))
        self.root.update()

    def _on_quit(self, _event: object = None) -> None:
        self.quit = True

    def show(self, image: np.ndarray) -> bool:
        """Show a BGR image; False once the user asked to quit (q, Esc, window closed)."""
        if self.quit:
            return False
        image = fit(image, self.max_size)
        h, w = image.shape[:2]
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else np.dstack([image] * 3)
        ppm = b"P6 %d %d 255\n" % (w, h) + np.ascontiguousarray(rgb, np.uint8).tobytes()
        photo = self._tk.PhotoImage(data=ppm, format="PPM")
        self.label.configure(image=photo)
        self.photo = photo  # keep a reference, or Tk shows nothing
        try:
            self.root.update()
        except self._tk.TclError:  # the window was destroyed under us
            self.quit = True
        return not self.quit

    def close(self) -> None:
        """Close the window (safe to call twice)."""
        if self.root is not None:
            with contextlib.suppress(self._tk.TclError):
                self.root.destroy()
            self.root = None


def open_window(title: str = TITLE) -> Window | None:
    """A window on this display: OpenCV's if it has GUI support, else Tk's; None if neither."""
    if not _display_set():
        return None
    try:
        return OpenCVWindow(title)
    except cv2.error:
        pass
    try:
        return TkWindow(title)
    except Exception:  # no tkinter, or Tk cannot reach the display
        return None
