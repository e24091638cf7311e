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
