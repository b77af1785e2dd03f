"""One error family: every problem a user can cause or fix is a PafposeError, told in one line.

The CLI prints these as one line (exit 2, or 1 per failed input) and the HTTP layer maps them to
status codes by type; any other exception is a bug and keeps its traceback. Each class also
derives from the built-in it replaced (ValueError, RuntimeError, ...) so `except ValueError`
in callers' code keeps working.
"""

from __future__ import annotations


class PafposeError(Exception):
    """Base of every error pafpose reports to its user; str() is one line."""


class InputError(PafposeError, ValueError):
    """A bad argument or option value (a size, a count, a preset or model name, ...)."""


class ImageError(PafposeError, ValueError):
    """An input that cannot be used as an image (unreadable, damaged, unsupported)."""


class ImageTooLargeError(ImageError):
    """An image above the pixel limit, or a network input above the ceiling."""


class ModelError(PafposeError, ValueError):
    """A model file that cannot be used: damaged, truncated, of the wrong kind or unsupported."""


class FetchError(PafposeError, RuntimeError):
    """A model could not be fetched; the message says what to do."""


class LicenseError(InputError):
    """A model whose licence the user must accept before pafpose downloads it."""


class VideoError(PafposeError, ValueError):
    """A video source or output that cannot be used."""


class OutputError(PafposeError, OSError):
    """An output location that cannot be written (checked before the work starts)."""


class MissingDependencyError(PafposeError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class NotFoundError(PafposeError, FileNotFoundError):
    """A file or folder the user named does not exist (a model, annotations, images, weights)."""


class UnknownNameError(InputError, KeyError):
    """A name that is none of the known ones (a model, a network); a KeyError too, as before."""

    __str__ = Exception.__str__  # the message as it is (KeyError would quote it)


class RosError(PafposeError, RuntimeError):
    """ROS cannot be used here: no ROS master to register with."""
