"""Bad data input, one row per case (issue 17): each gives a named one-line error (CLI exit code 2, the message
naming the modality / file / key), or, where the input is legal but suspicious, a DataWarning naming it, or a finite
result; and no existing file changes. Everything runs in-process (``mmib.cli.main([...])`` or the Python API).

The property-based tests at the end feed random shapes, dtypes and values to the generic loader and to
``MultimodalModel.fit / transform`` and accept no exception other than a named mmib error.
"""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
import re
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mmib
from mmib.cli import main
from mmib.data.dataset import DataWarning
from mmib.errors import MMIBError

h5py = pytest.importorskip("h5py")

N = 60
SMALL = {"method.representation_dim": 8, "method.embed_dim": 8}


def _xy(n=N, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    z = rng.normal(size=(n, 3)) + y[:, None]
    return {"a": z @ rng.normal(size=(3, 5)), "b": z @ rng.normal(size=(3, 3))}, y


def _model(tmp: Path) -> mmib.MultimodalModel:
    return mmib.MultimodalModel("clip", max_epochs=1, batch_size=16, progress=False, run_dir=str(tmp / "runs"),
                                overrides=SMALL)  # fmt: skip


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One small fitted model (integer labels 0..2) shared by the transform / evaluate cases."""
    X, y = _xy()
    return _model(tmp_path_factory.mktemp("fitted")).fit(X, y)


# ------------------------------------------------------------------ the table


@dataclass
class Case:
    """``prepare(tmp, model)`` writes the case's input files under ``tmp`` and returns the action: CLI arguments
    for ``mmib.cli.main`` or a zero-argument callable on the API."""

    id: str
    prepare: Callable[[Path, Any], list[str] | Callable[[], Any]]
    error: str | None = None  # regex the one-line error must match (then: exit code 2 / a named exception)
    warns: str | None = None  # regex of a DataWarning that must be given
    result: Callable[[Any], None] | None = None  # a check of the result (API) when no error is expected


def _npz(tmp: Path, name: str = "d.npz", meta: dict | None = None, **arrays) -> Path:
    p = tmp / name
    if meta is not None:
        arrays["meta"] = np.array(json.dumps(meta))
    np.savez(p, **arrays)
    return p


def _pkl(tmp: Path, name: str, obj: Any, protocol: int = pickle.DEFAULT_PROTOCOL) -> Path:
    p = tmp / name
    p.write_bytes(pickle.dumps(obj, protocol=protocol))
    return p


def _check(path: Path, fmt: str, *extra: str) -> list[str]:
    return ["data", "check", str(path), "--format", fmt, *extra]


def _train_generic(tmp: Path, path: Path) -> list[str]:
    return ["train", "method=clip", "data=generic", f"data.path={path}", "trainer.max_epochs=1", "data.batch_size=16",
            "method.representation_dim=8", "method.embed_dim=8", f"run_dir={tmp / 'runs'}",
            "trainer.enable_progress_bar=false"]  # fmt: skip


def _affect(n=4, t=3, **override):
    rng = np.random.default_rng(0)

    def part():
        return {"vision": rng.normal(size=(n, t, 2)), "audio": rng.normal(size=(n, t, 2)),
                "text": rng.normal(size=(n, t, 4)), "labels": rng.normal(size=(n, 1))}  # fmt: skip

    d = {"train": part(), "valid": part(), "test": part()}
    d.update(override)
    return d


def _wesad(tmp: Path, ecg_len_delta: int = 0) -> Path:
    n = 12 * 700
    label = np.repeat(np.array([1, 2, 3], dtype=np.int32), n // 3)
    for num in (2, 3, 4):
        d = {"subject": f"S{num}", "label": label,
             "signal": {"chest": {"Resp": np.zeros((n, 1)), "ECG": np.zeros((n + ecg_len_delta, 1))},
                        "wrist": {"BVP": np.zeros((12 * 64, 1))}}}  # fmt: skip
        (tmp / "WESAD" / f"S{num}").mkdir(parents=True)
        _pkl(tmp / "WESAD" / f"S{num}", f"S{num}.pkl", d, protocol=2)
    return tmp / "WESAD"


def _vision_touch_missing_key(tmp: Path) -> Path:
    d = tmp / "vt"
    d.mkdir()
    with h5py.File(d / "episode0.h5", "w") as f:
        f["image"] = np.zeros((5, 3, 8, 8), dtype=np.uint8)  # no proprio, forces, contact...
    return d


def _mujoco_push_missing_key(tmp: Path) -> Path:
    d = tmp / "push"
    d.mkdir()
    for name in ("gentle_push_1000.hdf5", "gentle_push_10.hdf5", "gentle_push_300.hdf5"):
        with h5py.File(d / name, "w") as f:
            g = f.create_group("trajectory0")
            g["eef_pos"] = np.zeros((40, 3))  # no Cylinder0_pos, force, contact, image
    return d


class _Payload:
    """A pickled object whose unpickling would create ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil(fmt: str) -> Callable[[Path, Any], list[str]]:
    def prepare(tmp, _):
        bad = {"payload": _Payload(tmp / "pwned")}
        if fmt == "wesad":
            (tmp / "W" / "S2").mkdir(parents=True)
            path = tmp / "W"
            _pkl(tmp / "W" / "S2", "S2.pkl", bad, protocol=2)
        else:
            name = {"mosi": "mosi_data.pkl", "mosei": "mosei_senti_data.pkl", "urfunny": "humor.pkl",
                    "mustard": "sarcasm.pkl", "mimic": "im.pk"}[fmt]  # fmt: skip
            path = _pkl(tmp, name, {**_affect(), **bad})
        return _check(path, fmt)

    return prepare


def _finite_metrics(r: dict) -> None:
    assert r and all(np.isfinite(v) for v in r.values()), r


X0, Y0 = _xy()
HUGE = X0["a"] * 1e300

CASES = [
    # ---------------- the Python API: fit
    Case("fit-zero-samples", lambda t, m: lambda: _model(t).fit({"a": np.zeros((0, 5)), "b": np.zeros((0, 3))}),
         error=r"fit: X holds 0 samples"),
    Case("fit-dotted-modality-name", lambda t, m: lambda: _model(t).fit({"a.b": X0["a"], "b": X0["b"]}),
         error=r"modality 'a\.b': a modality name cannot contain '\.'.*e\.g\. 'a_b'"),
    Case("fit-string-modality", lambda t, m: lambda: _model(t).fit({"a": X0["a"].astype(str), "b": X0["b"]}),
         error=r"fit: modality 'a': expected a real numeric array .*got strings"),
    Case("fit-object-modality", lambda t, m: lambda: _model(t).fit({"a": X0["a"].astype(object), "b": X0["b"]}),
         error=r"fit: modality 'a': expected a real numeric array .*got Python objects"),
    Case("fit-float32-overflow", lambda t, m: lambda: _model(t).fit({"a": HUGE, "b": X0["b"]}, Y0),
         error=r"modality 'a': values exceed the float32 range \(\|value\| .* in sample 0"),
    Case("fit-nan", lambda t, m: lambda: _model(t).fit({"a": np.where(np.arange(N)[:, None] == 3, np.nan, X0["a"]),
                                                        "b": X0["b"]}),
         error=r"modality 'a': NaN or inf in sample 3"),
    Case("fit-labels-wrong-length", lambda t, m: lambda: _model(t).fit(X0, Y0[:10]),
         error=r"labels y: expected 60 entries"),
    Case("fit-single-class", lambda t, m: lambda: _model(t).fit(X0, np.zeros(N, int)),
         warns=r"labels y of data set 'arrays': all 60 samples are class 0",
         result=lambda model: _finite_metrics(model.metrics_ or {"fitted": 1.0})),
    Case("fit-constant-modality", lambda t, m: lambda: _model(t).fit({"a": X0["a"], "b": np.ones((N, 3))}, Y0),
         warns=r"modality 'b' of data set 'arrays' is constant over the \d+ training samples",
         result=lambda model: None),
    Case("fit-class-names", lambda t, m: lambda: _model(t).fit(X0, np.array(["cat", "dog", "eel"])[Y0]).evaluate(
        {k: v[:30] for k, v in X0.items()}, np.array(["cat", "dog", "eel"])[Y0[:30]]), result=_finite_metrics),
    # ---------------- transform / evaluate on a fitted model
    Case("transform-zero-rows", lambda t, m: lambda: m.transform({"a": np.zeros((0, 5))}),
         error=r"transform: modality 'a': 0 rows"),
    Case("transform-strings", lambda t, m: lambda: m.transform({"a": np.full((4, 5), "x")}),
         error=r"transform: modality 'a': expected a real numeric array .*got strings"),
    Case("transform-objects", lambda t, m: lambda: m.transform({"a": np.full((4, 5), None, dtype=object)}),
         error=r"transform: modality 'a': expected a real numeric array .*got Python objects"),
    Case("transform-ragged", lambda t, m: lambda: m.transform({"a": [[1.0] * 5, [1.0] * 4]}),
         error=r"transform: modality 'a': cannot convert list to an array"),
    Case("transform-bogus-space", lambda t, m: lambda: m.transform(X0, space="bogus"),
         error=r"unknown space of transform 'bogus';.*valid: embedding, representation"),
    Case("transform-float32-overflow", lambda t, m: lambda: m.transform({"a": HUGE}),
         error=r"transform: modality 'a': values exceed the float32 range \(\|value\| .* in row 0"),
    Case("transform-nan-row", lambda t, m: lambda: m.transform({"a": np.where(np.arange(N)[:, None] == 7, np.inf,
                                                                              X0["a"])}),
         error=r"transform: modality 'a': NaN or inf in row 7"),
    Case("transform-row-mismatch", lambda t, m: lambda: m.transform({"a": X0["a"], "b": X0["b"][:9]}),
         error=r"transform: modalities have different numbers of rows \('a': 60, 'b': 9\)"),
    Case("transform-finite", lambda t, m: lambda: m.transform(X0),
         result=lambda z: (z.shape == (N, 16)) and np.isfinite(z).all() or pytest.fail(f"{z.shape}")),
    Case("evaluate-string-labels-after-index-fit", lambda t, m: lambda: m.evaluate(X0, np.array(list("uvw"))[Y0]),
         error=r"evaluate\(X, y\): labels y: class names given, but the model was fit with class indices 0\.\.2"),
    Case("evaluate-labels-out-of-range", lambda t, m: lambda: m.evaluate(X0, Y0 + 5),
         error=r"evaluate\(X, y\): labels y: class indices must lie in \[0, 2\]"),
    Case("evaluate-single-class-test", lambda t, m: lambda: m.evaluate({k: v[:20] for k, v in X0.items()},
                                                                       np.zeros(20, int)),
         warns=r"evaluate\(X, y\): the test labels are all class 0 \(20 samples\): accuracy only counts",
         result=_finite_metrics),
    Case("evaluate-string-labels-without-fit-data", lambda t, m: lambda: _without_fit_data(m).evaluate(
        X0, np.array(["p", "q", "r"])[Y0]), result=_finite_metrics),
    # ---------------- mmib data check: generic files and options
    Case("check-zero-rows", lambda t, m: _check(_npz(t, a=np.zeros((0, 4)), b=np.zeros((0, 3))), "generic"),
         error=r"d\.npz: data set 'd': no samples"),
    Case("check-dotted-modality", lambda t, m: _check(_npz(t, **{"a.x": X0["a"]}), "generic"),
         error=r"d\.npz: key 'a\.x': modality 'a\.x': a modality name cannot contain '\.'"),
    Case("check-meta-n-classes-1", lambda t, m: _check(_npz(t, meta={"n_classes": 1}, a=X0["a"], y=np.zeros(N, int)),
                                                        "generic"),
         error=r"d\.npz: key 'meta\.n_classes': expected an integer >= 2 .*got 1"),
    Case("check-meta-bad-rate", lambda t, m: _check(_npz(t, meta={"modalities": {"a": {"rate": "fast"}}}, a=X0["a"]),
                                                     "generic"),
         error=r"d\.npz: key 'meta\.modalities\.a\.rate': expected a sampling rate"),
    Case("check-unknown-option", lambda t, m: _check(_npz(t, a=X0["a"]), "generic", "--option", "bogus=1"),
         error=r"unknown option of data format 'generic' 'bogus';.*valid: cache_dir, dataset_name, modalities, task"),
    Case("check-float32-overflow", lambda t, m: _check(_npz(t, a=HUGE), "generic"),
         error=r"d\.npz: modality 'a': values exceed the float32 range"),
    Case("check-string-labels", lambda t, m: _check(_npz(t, a=X0["a"], y=np.array(["u"] * N)), "generic"),
         error=r"d\.npz: key 'y': expected integer class indices"),
    Case("check-single-class", lambda t, m: _check(_npz(t, a=X0["a"], y=np.ones(N, int)), "generic"),
         warns=r"labels y of data set 'd': all 60 samples are class 1"),
    # ---------------- mmib data check: one malformed file per format
    Case("check-mosi-missing-split", lambda t, m: _check(_pkl(t, "mosi_data.pkl", {k: v for k, v in _affect().items()
                                                                               if k != "test"}), "mosi"),
         error=r"mosi_data\.pkl: missing key 'test'"),
    Case("check-mosei-sample-counts",
         lambda t, m: _check(_pkl(t, "mosei_senti_data.pkl", _affect(train={**_affect()["train"],
                                                                            "labels": np.zeros((3, 1))})), "mosei"),
         error=r"mosei_senti_data\.pkl: split 'train': arrays have different numbers of samples"),
    Case("check-urfunny-root-not-a-dict", lambda t, m: _check(_pkl(t, "humor.pkl", [1, 2]), "urfunny"),
         error=r"humor\.pkl: key '\(root\)': expected a dict"),
    Case("check-mustard-truncated", lambda t, m: _check(_truncated(_pkl(t, "sarcasm.pkl", _affect())), "mustard"),
         error=r"sarcasm\.pkl: not a readable pickle"),
    Case("check-vision-touch-missing-key", lambda t, m: _check(_vision_touch_missing_key(t), "vision_touch"),
         error=r"episode0\.h5: missing key"),
    Case("check-mujoco-push-missing-key", lambda t, m: _check(_mujoco_push_missing_key(t), "mujoco_push"),
         error=r"gentle_push_1000\.hdf5: missing key"),
    Case("check-wesad-short-ecg", lambda t, m: _check(_wesad(t, ecg_len_delta=-5), "wesad"),
         error=r"S2\.pkl: key 'signal/chest/ECG': expected 8400 samples"),
    Case("check-mimic-wrong-rank", lambda t, m: _check(_pkl(t, "im.pk", {"ep_tdata": np.zeros((3, 24))}), "mimic"),
         error=r"im\.pk: key 'ep_tdata': expected shape \(N, N, N\), got shape \(3, 24\)"),
    Case("check-generic-object-array", lambda t, m: _check(_npz(t, a=np.array([[None, 1]] * 4, dtype=object)),
                                                           "generic"),
         error=r"d\.npz: key 'a': expected a numeric or string array \(no pickled objects\)"),
    *(Case(f"check-{fmt}-code-in-pickle", _evil(fmt), error=r"refused to unpickle 'io\.open'.*data\.trust_pickle=true")
      for fmt in ("mosi", "mosei", "urfunny", "mustard", "wesad", "mimic")),
    # ---------------- mmib train on a generic file
    Case("train-zero-rows", lambda t, m: _train_generic(t, _npz(t, a=np.zeros((0, 4)), b=np.zeros((0, 3)))),
         error=r"d\.npz: data set 'd': no samples"),
    Case("train-split-all-train",
         lambda t, m: _train_generic(t, _npz(t, a=X0["a"], b=X0["b"], y=Y0, split=np.array(["train"] * N))),
         warns=r"d\.npz: key 'split': the test split is empty \(\d+ train, \d+ val, 0 test\)"),
]


def _truncated(p: Path) -> Path:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return p


def _without_fit_data(m: mmib.MultimodalModel) -> mmib.MultimodalModel:
    """The model as after ``load``: the fit data's splits and class names are not at hand."""
    c = copy.copy(m)
    c.datamodule_, c.classes_ = None, None
    return c


def _snapshot(*roots: Path) -> dict[Path, tuple[int, str]]:
    return {p: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for r in roots if r is not None for p in r.rglob("*") if p.is_file()}  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path, capsys, fitted):
    action = case.prepare(tmp_path, fitted)
    watched = (tmp_path, fitted.run_dir_)
    before = _snapshot(*watched)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        if isinstance(action, list):
            rc = main(action)
            out, err = capsys.readouterr()
            if case.error:
                assert rc == 2, (rc, err)
                assert err.startswith("mmib: error: ") and err.count("\n") == 1, err
                assert re.search(case.error, err), err
            else:
                assert rc == 0, err
        elif case.error:
            with pytest.raises(MMIBError) as e:
                action()
            msg = str(e.value)
            assert "\n" not in msg and re.search(case.error, msg), msg
        else:
            res = action()
            if case.result is not None:
                case.result(res)
    messages = [str(w.message) for w in rec if issubclass(w.category, DataWarning)]
    if case.warns:
        assert any(re.search(case.warns, m) for m in messages), messages
    else:
        assert not messages, messages
    after = _snapshot(*watched)
    changed = [str(p) for p in before if after.get(p) != before[p]]
    assert not changed, f"existing files changed: {changed}"
    assert not (tmp_path / "pwned").exists()


# ------------------------------------------------------------------ property-based: never an unnamed exception

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

_DTYPES = st.sampled_from(["float64", "float32", "float16", "int64", "int8", "uint8", "bool", "complex64", "U3",
                           "S2", "object", "datetime64[s]"])  # fmt: skip
_VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e300, -1e300, 0.0, 1.0]))


@st.composite
def _array(draw, n: int | None = None):
    dtype = np.dtype(draw(_DTYPES))
    n = draw(st.integers(0, 6)) if n is None else n
    shape = (n, *draw(st.lists(st.integers(0, 3), min_size=0, max_size=3)))
    if dtype.kind == "f":
        elements = _VALUES.map(lambda v: float(np.clip(v, -6e4, 6e4)) if dtype.itemsize == 2 and np.isfinite(v) else v)
        return draw(hnp.arrays(dtype, shape, elements=elements))
    if dtype.kind == "O":
        return draw(hnp.arrays(dtype, shape, elements=st.one_of(st.none(), st.integers(-3, 3), st.text(max_size=2))))
    return draw(hnp.arrays(dtype, shape))


def _plausible(n: int):
    """Mostly well-formed modalities ((n, k) float64 or int64), some with one NaN, inf or huge value: these reach
    training and the deeper checks."""

    def spoil(a: np.ndarray, bad: float | None, at: int) -> np.ndarray:
        if bad is not None and a.size and a.dtype.kind == "f":
            a = a.copy()
            a.flat[at % a.size] = bad
        return a

    arrays = st.tuples(st.sampled_from([1, 3, 5]), st.sampled_from(["float64", "int64"])).flatmap(
        lambda t: hnp.arrays(t[1], (n, t[0]), elements=st.integers(-5, 5) if t[1] == "int64" else st.floats(-5, 5)))
    return st.builds(spoil, arrays, st.sampled_from([None, None, None, np.nan, np.inf, 1e300]), st.integers(0, 99))


_NAMES = st.sampled_from(["a", "b", "a.b", "y", "split", "groups", "mask_a", "lengths_a", "latent_z"])


def _named(e: BaseException) -> bool:
    return isinstance(e, MMIBError) and "\n" not in str(e).strip()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(arrays=st.dictionaries(_NAMES, _array(), min_size=1, max_size=4),
       n=st.integers(0, 8), same_n=st.booleans())  # fmt: skip
def test_generic_loader_never_raises_an_unnamed_exception(arrays, n, same_n):
    if same_n:  # mostly consistent sample counts, so that the deeper checks are reached too
        arrays = {k: (np.resize(v, (n, *v.shape[1:])) if v.size else np.zeros((n, *v.shape[1:]), v.dtype))
                  for k, v in arrays.items()}  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "r.npz"
        np.savez(p, **arrays)
        try:
            ds = mmib.data.registry.build_dataset("generic", path=str(p))
        except Exception as e:  # noqa: BLE001 - the property under test
            assert _named(e), f"{type(e).__name__}: {e}"
            return
        for m in ds.spec.modality_names:
            assert np.isfinite(np.asarray(ds.x[m], dtype=np.float32)).all()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(x=st.dictionaries(st.sampled_from(["a", "b"]), _plausible(7) | _array(), min_size=1, max_size=2),
       space=st.sampled_from(["representation", "embedding", "bogus"]))  # fmt: skip
def test_transform_never_raises_an_unnamed_exception(fitted, x, space):
    try:
        z = fitted.transform(x, space=space)
    except Exception as e:  # noqa: BLE001
        assert _named(e), f"{type(e).__name__}: {e}"
        return
    assert np.isfinite(z).all() and len(z) == len(next(iter(x.values())))


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(x=st.dictionaries(st.sampled_from(["a", "b", "c.d"]), _plausible(24) | _array(n=24), min_size=1, max_size=2),
       y=st.one_of(st.none(), hnp.arrays(st.sampled_from(["int64", "float64", "U1", "bool"]), st.integers(0, 30))))
def test_fit_never_raises_an_unnamed_exception(x, y):
    with tempfile.TemporaryDirectory() as d:
        model = mmib.MultimodalModel("clip", max_epochs=1, batch_size=8, progress=False, run_dir=d, overrides=SMALL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                model.fit(x, y)
            except Exception as e:  # noqa: BLE001
                assert _named(e), f"{type(e).__name__}: {e}"
                return
            z = model.transform(x)
        assert np.isfinite(z).all()
