"""mmib.utils.deps.require: the module, or a MissingDependencyError naming the extra to install."""

import json

import pytest

from mmib.errors import MissingDependencyError
from mmib.utils.deps import require


def test_an_installed_module_is_returned():
    assert require("json", "core") is json
    import os.path

    assert require("os.path", "core") is os.path


def test_a_missing_module_names_the_package_and_the_extra():
    with pytest.raises(MissingDependencyError, match=r"^reading SNIRF needs the optional package "
                                                     r"'mmib_no_such_pkg': pip install 'mmib\[physio\]' \(No module "
                                                     r"named 'mmib_no_such_pkg'\)$") as e:
        require("mmib_no_such_pkg.sub", "physio", "reading SNIRF")
    assert isinstance(e.value, ImportError) and isinstance(e.value.__cause__, ImportError)
    with pytest.raises(MissingDependencyError, match=r"^this feature needs"):
        require("mmib_no_such_pkg", "x")
