"""Every test under tests/data/ (file loaders, packaged and pyphysio data, simulators) runs with the network
disabled: mmib's data code never downloads, and a test that tries fails at once."""

import socket

import pytest


class NetworkAccessError(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any attempt to open a network connection fails the test (loaders never download)."""

    def refuse(*args, **kwargs):
        raise NetworkAccessError(f"network access attempted during a data test: {args[1:] or kwargs}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield
