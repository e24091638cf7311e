"""Loader tests run without the user's MMIB_DATA (and, by tests/data/conftest.py, with the network disabled)."""

import pytest


@pytest.fixture(autouse=True)
def _no_user_data_root(monkeypatch):
    monkeypatch.delenv("MMIB_DATA", raising=False)
    yield
