"""Shared by the protocol tests: short probe training options and the check that a protocol wrote a real plot."""

import matplotlib.image as mpimg
import pytest


@pytest.fixture
def fast_probe():
    """Probe options that train briefly (60 epochs at most, patience 10): a fresh dict for each test."""
    return {"max_epochs": 60, "patience": 10}


@pytest.fixture
def png_ok():
    """``png_ok(path)``: the file is an image (height, width, channels) larger than 50 x 50 pixels."""

    def check(path):
        img = mpimg.imread(path)
        assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50

    return check
