"""Loader tests run with the network disabled and without the user's MMIB_DATA."""

import socket

import pytest


class NetworkAccessError(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any attempt to open a network connection fails the test (loaders never download)."""

    def refuse(*args, **kwargs):
        raise NetworkAccessError(f"network access attempted during a loader test: {args[1:] or kwargs}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield


@pytest.fixture(autouse=True)
def _no_user_data_root(monkeypatch):
    monkeypatch.delenv("MMIB_DATA", raising=False)
    yield
