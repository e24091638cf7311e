"""mmib.utils.checkpoint: the content digest (against a hand-computed SHA-256), its verification, and loading that
never runs code and fails with one line naming the file."""

import hashlib
import pickle

import pytest
import torch

from mmib.utils.checkpoint import (
    DIGEST_KEY,
    VERSION_KEY,
    CorruptCheckpointError,
    add_digest,
    content_digest,
    read_checkpoint,
    torch_load_safe,
    update_digest,
    verify_digest,
)


def test_digest_of_plain_values_is_the_documented_encoding():
    # the encoding written out by hand: a mapping "D<len>;" then key and value; other values "V<type>:<repr>;"
    want = hashlib.sha256(b"D2;Vstr:'a';Vint:1;Vstr:'b';L2;VNoneType:None;Vfloat:0.5;").hexdigest()
    assert content_digest({"a": 1, "b": [None, 0.5]}) == want
    assert content_digest({"a": 1, "b": [None, 0.5], DIGEST_KEY: "anything"}) == want  # its own entry left out
    t = torch.tensor([[1.0, -2.0]], dtype=torch.float32)
    h = hashlib.sha256(b"Ttorch.float32(1, 2);" + t.numpy().tobytes())
    got = hashlib.sha256()
    update_digest(got, t)
    assert got.hexdigest() == h.hexdigest()


def test_digest_tells_apart_what_a_byte_comparison_would_not():
    t = torch.arange(6, dtype=torch.float32)
    d = content_digest({"w": t})
    assert content_digest({"w": t.clone()}) == d
    assert content_digest({"w": t.reshape(2, 3)}) != d  # same bytes, other shape
    assert content_digest({"w": t.view(torch.int32)}) != d  # same bytes, other dtype
    assert content_digest({"w": [1, 2]}) != content_digest({"w": (1, 2)})
    assert content_digest({"a": 1, "b": 2}) != content_digest({"b": 2, "a": 1})  # insertion order counts
    assert content_digest({"s": {3, 1, 2}}) == content_digest({"s": {2, 3, 1}})  # sets: order-free
    assert content_digest({"w": t[::2]}) == content_digest({"w": t[::2].contiguous()})  # a strided view: its values
    sparse = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    assert content_digest({"w": sparse.to_sparse()}) == content_digest({"w": sparse})


def test_add_and_verify_digest():
    ck = {"state_dict": {"w": torch.randn(3)}, "epoch": 2}
    assert verify_digest(dict(ck), "old.ckpt") is False  # written before digests: loads without the check
    add_digest(ck)
    assert ck[VERSION_KEY] == 2 and ck[DIGEST_KEY]["algorithm"] == "sha256"
    assert verify_digest(ck, "x.ckpt") is True
    ck["state_dict"]["w"][1] += 1e-6
    with pytest.raises(CorruptCheckpointError, match=r"^'x.ckpt': the checkpoint's content does not match its digest"):
        verify_digest(ck, "x.ckpt")
    lost = {k: v for k, v in add_digest({"epoch": 1}).items() if k != DIGEST_KEY}
    with pytest.raises(CorruptCheckpointError, match="digest is missing although its format has one"):
        verify_digest(lost, "x.ckpt")
    with pytest.raises(CorruptCheckpointError, match="digest entry is malformed"):
        verify_digest({"epoch": 1, DIGEST_KEY: {"algorithm": "md5", "hex": "00"}}, "x.ckpt")


def test_read_checkpoint_round_trip_and_one_line_failures(tmp_path):
    path = tmp_path / "a.ckpt"
    ck = add_digest({"state_dict": {"w": torch.randn(4, 2)}, "hyper_parameters": {"lr": 0.1}, "epoch": 3})
    torch.save(ck, path)
    back = read_checkpoint(path)
    torch.testing.assert_close(back["state_dict"]["w"], ck["state_dict"]["w"])
    assert back["epoch"] == 3 and verify_digest(back, path)
    # a flipped value, saved again with the old digest
    ck["epoch"] = 4
    torch.save(ck, tmp_path / "edited.ckpt")
    with pytest.raises(CorruptCheckpointError, match="does not match its digest"):
        read_checkpoint(tmp_path / "edited.ckpt")
    assert read_checkpoint(tmp_path / "edited.ckpt", verify=False)["epoch"] == 4
    data = path.read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match=r"^'.*cut.ckpt': not a readable checkpoint \(truncated or "
                                                     r"corrupted\?\): "):
        read_checkpoint(tmp_path / "cut.ckpt")
    with pytest.raises(CorruptCheckpointError, match=r"'.*missing.ckpt': no such file"):
        read_checkpoint(tmp_path / "missing.ckpt")
    with pytest.raises(CorruptCheckpointError, match="is a folder, expected a checkpoint file"):
        read_checkpoint(tmp_path)
    torch.save([1, 2], tmp_path / "list.ckpt")
    with pytest.raises(CorruptCheckpointError, match="holds a list, expected a Lightning checkpoint dictionary"):
        read_checkpoint(tmp_path / "list.ckpt")


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_a_pickle_that_asks_to_run_code_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "evil.ckpt"
    torch.save({"x": _RunsCode()}, path)
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"x": _RunsCode()}))
    called = []
    import os

    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    with pytest.raises(CorruptCheckpointError, match=r"'.*evil.ckpt': refused to load: the file asks to run code .*"
                                                     r"mmib never executes code from a checkpoint"):
        torch_load_safe(path)
    assert called == []
    with pytest.raises(CorruptCheckpointError, match="raw.pkl"):
        torch_load_safe(raw)
    assert called == []
