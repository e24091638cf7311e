"""tests/data/conftest.py disables the network for every test under tests/data/ (the file loaders' tests in
tests/data/loaders/ included): a loader that downloads fails."""

import socket
import urllib.request

import pytest


def test_network_is_disabled_for_every_data_test():
    with pytest.raises(RuntimeError, match="network access attempted during a data test"):
        socket.create_connection(("example.org", 80), timeout=1)
    with pytest.raises(Exception, match="network access attempted"):
        urllib.request.urlopen("http://example.org", timeout=1)
    s = socket.socket()
    try:
        with pytest.raises(RuntimeError, match="network access attempted"):
            s.connect(("127.0.0.1", 9))
        with pytest.raises(RuntimeError, match="network access attempted"):
            s.connect_ex(("127.0.0.1", 9))
    finally:
        s.close()
