"""Every test under tests/data/ (file loaders, packaged and pyphysio data, simulators) runs with the network
disabled: mmib's data code never downloads, and a test that tries fails at once. toy_spec is the small
data contract that test_spec.py and test_dataset.py share."""

import socket

import pytest

from mmib.data.spec import DatasetSpec, ModalitySpec


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


@pytest.fixture
def toy_spec():
    """``toy_spec(task="classification")`` → the contract of a toy data set: a vector modality 'a' of 5 features and
    a signal 's' of 2 channels x 8 samples, 3 classes (classification) and one latent 'z' of 2 values."""

    def make(task="classification"):
        return DatasetSpec(
            "toy",
            (ModalitySpec("a", "vector", (5,)), ModalitySpec("s", "signal", (2, 8))),
            task=task,
            n_classes=3 if task == "classification" else None,
            latents={"z": 2},
        )

    return make
