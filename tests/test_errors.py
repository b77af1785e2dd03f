"""errors: one family, each class also the built-in it replaced."""

from __future__ import annotations

import pytest

from pafpose import errors


@pytest.mark.parametrize("cls, builtin", [
    (errors.InputError, ValueError), (errors.ImageError, ValueError),
    (errors.ImageTooLargeError, errors.ImageError), (errors.ModelError, ValueError),
    (errors.FetchError, RuntimeError), (errors.VideoError, ValueError),
    (errors.OutputError, OSError), (errors.MissingDependencyError, ImportError),
    (errors.RosError, RuntimeError),
])
def test_every_error_is_a_pafpose_error_and_its_builtin(cls, builtin):
    assert issubclass(cls, errors.PafposeError) and issubclass(cls, builtin)


def test_package_errors_join_the_family():
    from pafpose.models.integrity import ModelFileError
    from pafpose.models.tfgraph import GraphDefError

    assert issubclass(ModelFileError, errors.ModelError)
    assert issubclass(GraphDefError, errors.ModelError)
