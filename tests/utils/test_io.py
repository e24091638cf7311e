"""Atomic writes: the file appears whole and with the permissions a plain write would give."""

import json
import os
import stat

from mmib.utils.io import atomic_write_json, atomic_write_text


def test_atomic_writes_have_plain_file_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.md", "hello")
        atomic_write_json(tmp_path / "b.json", {"x": 1})
        plain = tmp_path / "c.txt"
        plain.write_text("plain")
    finally:
        os.umask(old)
    want = stat.S_IMODE(plain.stat().st_mode)
    assert want == 0o644
    for name in ("a.md", "b.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == want, name
    assert (tmp_path / "a.md").read_text() == "hello" and json.loads((tmp_path / "b.json").read_text()) == {"x": 1}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_atomic_path_renames_on_success_and_leaves_nothing_on_failure(tmp_path):
    import numpy as np
    import pytest

    from mmib.utils.io import atomic_path

    out = tmp_path / "sub" / "x.npz"
    with atomic_path(out) as tmp:
        assert tmp.suffix == ".npz" and tmp.parent == out.parent and tmp != out
        np.savez(tmp, a=np.arange(3))  # a writer that infers (and would append) the suffix
    assert np.load(out)["a"].tolist() == [0, 1, 2]
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert np.load(out)["a"].tolist() == [0, 1, 2]  # the old file is intact
    assert sorted(p.name for p in out.parent.iterdir()) == ["x.npz"]
