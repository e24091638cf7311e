"""Loading a data pickle never runs code: the restricted unpickler of the MultiBench affect, WESAD and MIMIC loaders.

Legitimate files (numpy arrays in dicts, any pickle protocol, numpy 1.x module names, Python-2 latin1 pickles) load
without an opt-in; a pickle that names any other global (``os.system``, ``builtins.open``, a class) is refused
before the global is called, with one line naming the file, the global, ``data.trust_pickle=true`` and the risk.
"""

import datetime
import os
import pickle
import struct
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest

from mmib.cli import main
from mmib.data.dataset import DataValidationError
from mmib.data.loaders._common import SAFE_PICKLE_GLOBALS, load_pickle
from mmib.data.registry import build_dataset

# ---------------------------------------------------------------- payloads that would create a file


class _System:
    def __init__(self, marker):
        self.cmd = f"touch {marker}"

    def __reduce__(self):
        return (os.system, (self.cmd,))


class _Open:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _Exec:
    def __init__(self, marker):
        self.code = f"open({str(marker)!r}, 'w').write('pwned')"

    def __reduce__(self):
        return (exec, (self.code,))


PAYLOADS = {"os.system": _System, "builtins.open": _Open, "builtins.exec": _Exec}
#: the global each payload names in the pickle (os.system is posix.system, open is io.open)
GLOBAL = {k: f"{f.__module__}.{f.__name__}" for k, f in {"os.system": os.system, "builtins.open": open,
                                                         "builtins.exec": exec}.items()}


def _evil_payload(kind, marker, inside):
    """``inside`` (a legitimate-looking dict) with the payload hidden in one of its values."""
    return {**inside, "payload": PAYLOADS[kind](marker)}


# ---------------------------------------------------------------- legitimate files per format


def _affect(n=6, t=4):
    rng = np.random.default_rng(0)

    def part(k):
        text = rng.normal(size=(k, t, 5))
        return {"vision": rng.normal(size=(k, t, 3)), "audio": rng.normal(size=(k, t, 2)), "text": text,
                "labels": rng.normal(size=(k, 1, 1))}  # fmt: skip

    return {"train": part(n), "valid": part(n), "test": part(n)}


def _mimic(n=20):
    rng = np.random.default_rng(0)
    return {"ep_tdata": rng.normal(size=(n, 24, 12)), "adm_features_all": rng.normal(size=(n, 5)),
            "adm_labels_all": (rng.random((n, 6)) > 0.5).astype(float), "y_icd9": rng.integers(0, 2, (n, 20))}


def _wesad_subject(num):
    dur, n = 30, 30 * 700
    label = np.zeros(n, dtype=np.int32)
    label[: 10 * 700], label[10 * 700 : 20 * 700], label[20 * 700 :] = 1, 2, 3
    t = np.arange(n) / 700.0
    return {"subject": f"S{num}", "label": label,
            "signal": {"chest": {"Resp": t.reshape(-1, 1), "ECG": np.sin(t).reshape(-1, 1) + num},
                       "wrist": {"BVP": np.cos(np.arange(dur * 64) / 64.0).reshape(-1, 1)}}}  # fmt: skip


#: pickle format → (file layout writer, loader options, the legitimate content)
def _write_format(fmt, tmp, content, protocol=pickle.DEFAULT_PROTOCOL):
    """Write ``content`` where the loader of ``fmt`` expects it; return the path to give the loader."""
    if fmt == "wesad":
        root = tmp / "WESAD"
        for num, d in enumerate(content, start=2):
            (root / f"S{num}").mkdir(parents=True, exist_ok=True)
            (root / f"S{num}" / f"S{num}.pkl").write_bytes(pickle.dumps(d, protocol=2))
        return root
    name = {"mosi": "mosi_data.pkl", "mosei": "mosei_senti_data.pkl", "urfunny": "humor.pkl",
            "mustard": "sarcasm.pkl", "mimic": "im.pk"}[fmt]  # fmt: skip
    p = tmp / name
    p.write_bytes(pickle.dumps(content, protocol=protocol))
    return p


def _legit(fmt):
    if fmt == "wesad":
        return [_wesad_subject(n) for n in (2, 3, 4)]
    return _mimic() if fmt == "mimic" else _affect()


def _evil(fmt, marker, kind="os.system"):
    if fmt == "wesad":
        subjects = _legit("wesad")
        subjects[1] = _evil_payload(kind, marker, subjects[1])
        return subjects
    return _evil_payload(kind, marker, _legit(fmt))


PICKLE_FORMATS = ["mosi", "mosei", "urfunny", "mustard", "wesad", "mimic"]


def _snapshot(root):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()}


# ---------------------------------------------------------------- refusals


def test_the_payloads_are_real(tmp_path):
    """Unpickled without restriction, each payload does create its file (so the refusals below mean something)."""
    for kind in PAYLOADS:
        marker = tmp_path / f"pwned-{kind}"
        f = tmp_path / f"{kind}.pkl"
        f.write_bytes(pickle.dumps(PAYLOADS[kind](marker)))
        load_pickle(f, trust=True)
        assert marker.exists(), kind


@pytest.mark.parametrize("kind", list(PAYLOADS))
@pytest.mark.parametrize("fmt", PICKLE_FORMATS)
def test_loaders_refuse_code_in_pickles(tmp_path, fmt, kind):
    marker = tmp_path / "pwned"
    path = _write_format(fmt, tmp_path, _evil(fmt, marker, kind))
    before = _snapshot(tmp_path)
    with pytest.raises(DataValidationError) as e:
        build_dataset(fmt, path=str(path))
    msg = str(e.value)
    assert "\n" not in msg
    assert f"refused to unpickle '{GLOBAL[kind]}'" in msg
    assert "data.trust_pickle=true" in msg and "can run code" in msg
    assert (str(path) if fmt != "wesad" else "S3.pkl") in msg
    assert not marker.exists()
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("fmt", PICKLE_FORMATS)
def test_data_check_refuses_code_in_pickles(tmp_path, capsys, fmt):
    marker = tmp_path / "pwned"
    path = _write_format(fmt, tmp_path, _evil(fmt, marker, "builtins.open"))
    assert main(["data", "check", str(path), "--format", fmt]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("mmib: error: ")
    assert f"refused to unpickle '{GLOBAL['builtins.open']}'" in err and "trust_pickle=true" in err
    assert not marker.exists()


def test_train_refuses_code_in_pickles(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = _write_format("mimic", tmp_path, _evil("mimic", marker))
    rc = main(["train", "method=clip", "data=mimic", f"data.path={path}", "trainer.max_epochs=1",
               f"run_dir={tmp_path / 'runs'}"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and f"refused to unpickle '{GLOBAL['os.system']}'" in err and "data.trust_pickle=true" in err
    assert not marker.exists()


def test_refused_before_any_call(tmp_path):
    """A REDUCE of a refused global never runs even when it comes first and the rest of the file is garbage."""
    marker = tmp_path / "pwned"
    raw = pickle.dumps(_Open(marker), protocol=2)[:-1] + b"garbage"
    f = tmp_path / "x.pkl"
    f.write_bytes(raw)
    with pytest.raises(DataValidationError, match=f"refused to unpickle '{GLOBAL['builtins.open']}'"):
        load_pickle(f)
    assert not marker.exists()


# ---------------------------------------------------------------- what still loads


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_and_containers_load_at_every_protocol(tmp_path, protocol):
    obj = {"f64": np.arange(6.0).reshape(2, 3), "f32": np.ones(3, np.float32), "i": np.arange(4),
           "fortran": np.asfortranarray(np.arange(6).reshape(2, 3)), "big_endian": np.arange(3, dtype=">f4"),
           "strings": np.array(["ab", "c"]), "bytes_arr": np.array([b"x"]), "ids": np.array(["a", b"b", 3], object),
           "structured": np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]), "scalar": np.float64(2.5),
           "iscalar": np.int64(3), "flag": np.bool_(True), "dtype": np.dtype("f8"), "od": OrderedDict(a=1),
           "set": {1, 2}, "frozen": frozenset({3}), "complex": 1 + 2j, "raw": b"\x00\xff", "ba": bytearray(b"z"),
           "nested": [(1, 2.0, "x", None, True)]}  # fmt: skip
    f = tmp_path / "ok.pkl"
    f.write_bytes(pickle.dumps(obj, protocol=protocol))
    back = load_pickle(f)
    want = pickle.loads(f.read_bytes())  # what the unrestricted unpickler builds (protocol 0-2 drop '>' byte order)
    assert back.keys() == obj.keys()
    for k, v in want.items():
        if isinstance(v, np.ndarray):
            assert back[k].dtype == v.dtype and back[k].shape == v.shape and back[k].tolist() == v.tolist(), k
            assert back[k].flags.f_contiguous == v.flags.f_contiguous
        else:
            assert back[k] == v and type(back[k]) is type(v), k


def _py2_str(b: bytes) -> bytes:
    """A Python-2 ``str`` in a protocol-2 pickle (SHORT_BINSTRING / BINSTRING): what Python 3 reads as latin1."""
    return (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<i", len(b))) + b


def _py2_array(a: np.ndarray) -> bytes:
    """An ndarray exactly as Python 2 + numpy 1.x pickle it (protocol 2, numpy.core names, str data)."""
    dt = a.dtype
    return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _py2_str(b"b") + b"\x87R("
            + b"K\x01" + b"".join(b"J" + struct.pack("<i", s) for s in a.shape) + (b"\x85" if a.ndim == 1 else b"\x86")
            + b"cnumpy\ndtype\n" + _py2_str(dt.str[1:].encode()) + b"K\x00K\x01\x87R(K\x03" + _py2_str(b"<")
            + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89" + _py2_str(a.tobytes()) + b"tb")  # fmt: skip


def _py2_dict(items: dict) -> bytes:
    body = b"".join(_py2_str(k.encode()) + (_py2_array(v) if isinstance(v, np.ndarray) else _py2_dict(v))
                    for k, v in items.items())  # fmt: skip
    return b"}(" + body + b"u"


def test_python2_latin1_wesad_pickle_loads(tmp_path):
    """A WESAD subject file as the originals are (Python 2, numpy 1.x): read with latin1 by the restricted unpickler;
    ``set`` pickled by Python 2 as ``__builtin__.set`` is mapped as the standard unpickler maps it."""
    d = _wesad_subject(2)
    sig = {dev: dict(v) for dev, v in d["signal"].items()}
    raw = b"\x80\x02}(" + _py2_str(b"label") + _py2_array(d["label"]) + _py2_str(b"signal") + _py2_dict(sig)
    raw += _py2_str(b"subject") + _py2_str(b"S2") + _py2_str(b"tags") + b"c__builtin__\nset\n](" + _py2_str(b"\xe9")
    raw += b"e\x85Ru."
    for num in (2, 3, 4):
        (tmp_path / "WESAD" / f"S{num}").mkdir(parents=True)
        (tmp_path / "WESAD" / f"S{num}" / f"S{num}.pkl").write_bytes(raw)
    back = load_pickle(tmp_path / "WESAD" / "S2" / "S2.pkl", encoding="latin1")
    assert back["subject"] == "S2" and back["tags"] == {"\xe9"}
    np.testing.assert_array_equal(back["signal"]["chest"]["ECG"], d["signal"]["chest"]["ECG"])
    assert back["label"].dtype == np.int32
    ds = build_dataset("wesad", path=str(tmp_path / "WESAD"))
    assert len(ds) > 0 and set(ds.groups.tolist()) == {2, 3, 4}


@pytest.mark.parametrize("fmt", PICKLE_FORMATS)
def test_legitimate_files_load_without_opt_in(tmp_path, fmt):
    path = _write_format(fmt, tmp_path, _legit(fmt))
    ds = build_dataset(fmt, path=str(path))
    assert len(ds) > 0


def test_opt_in_loads_a_trusted_pickle_with_a_custom_class(tmp_path, capsys):
    content = {**_mimic(), "note": types.SimpleNamespace(author="me"), "created": datetime.date(2020, 1, 1)}
    path = _write_format("mimic", tmp_path, content)
    with pytest.raises(DataValidationError, match=r"refused to unpickle 'types\.SimpleNamespace'"):
        build_dataset("mimic", path=str(path))
    assert len(build_dataset("mimic", path=str(path), trust_pickle=True)) == 20
    assert main(["data", "check", str(path), "--format", "mimic", "--option", "trust_pickle=true"]) == 0
    assert "20 samples" in capsys.readouterr().out
    # the config key every pickle-based data set takes (conf/data/<name>.yaml), as `mmib train ... data.trust_pickle`
    from mmib.config import compose_config, split_data_config

    for fmt in PICKLE_FORMATS:
        _, options, _ = split_data_config(compose_config([f"data={fmt}", "data.trust_pickle=true"])["data"])
        assert options["trust_pickle"] is True


def test_trust_pickle_must_be_a_boolean(tmp_path):
    path = _write_format("mimic", tmp_path, _mimic())
    with pytest.raises(DataValidationError, match=r"trust_pickle: expected true or false, got 'false'"):
        build_dataset("mimic", path=str(path), trust_pickle="false")


def test_allow_list_is_only_data():
    """No entry of the allow-list can run code or touch files (a reviewer's check, kept next to the list)."""
    modules = {m for m, _ in SAFE_PICKLE_GLOBALS}
    assert modules <= {"numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
                       "numpy._core.numeric", "_codecs", "collections", "builtins"}  # fmt: skip
    builtins_ok = {"set", "frozenset", "complex", "bytearray", "bytes", "str", "int", "float", "bool", "list", "dict",
                   "tuple"}  # fmt: skip
    assert {n for m, n in SAFE_PICKLE_GLOBALS if m == "builtins"} <= builtins_ok
    assert ("collections", "OrderedDict") in SAFE_PICKLE_GLOBALS and ("_codecs", "encode") in SAFE_PICKLE_GLOBALS
    assert sys.modules.get("numpy") is not None


def test_arrays_with_hidden_object_fields_are_refused(tmp_path):
    """A pickle may build a structured dtype with an object field and its object flags cleared; numpy would then read
    file bytes as object pointers (a segfault on first use). Such arrays are refused before anything reads them."""
    import pickle as _pickle

    import numpy as _np

    from mmib.data.dataset import DataValidationError
    from mmib.data.loaders._common import load_pickle

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct

    class _R:
        def __init__(self, f, a, st=None):
            self.f, self.a, self.st = f, a, st

        def __reduce__(self):
            return (self.f, self.a, self.st) if self.st is not None else (self.f, self.a)

    dt = _R(_np.dtype, ("V8", False, True), (3, "|", None, ("a",), {"a": (_np.dtype("O"), 0)}, 8, 1, 0))
    arr = _R(_reconstruct, (_np.ndarray, (0,), b"b"), (1, (1,), dt, False, b"\x41" * 8))
    path = tmp_path / "structobj.pkl"
    path.write_bytes(_pickle.dumps({"train": arr}, protocol=2))
    with pytest.raises(DataValidationError, match=r"structobj\.pkl: refused to unpickle .*objects inside a structured"):
        load_pickle(path)
