"""mmib.eval.probe.cache: stored probe results equal fitted ones, every input and setting is in the key, unreadable
entries are fitted again, JSON only."""

import json

import numpy as np
import pytest

import mmib.eval.probe.cache as pc
from mmib.eval.probe import ProbeConfig, fit_linear_probes, fit_probe
from mmib.eval.probe.cache import ProbeCache, array_digest, code_version, probe_key

FAST = ProbeConfig(kind="linear", max_epochs=40, patience=5)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = {s: rng.normal(size=(n, 6)).astype(np.float32) for s, n in (("train", 120), ("val", 40), ("test", 50))}
    y = {s: (x[s][:, 0] + 0.3 * x[s][:, 1] > 0).astype(np.int64) for s in x}
    return x, y


def _fit(x, y, cfg=FAST, val=True):
    return fit_probe(x["train"], y["train"], x["val"] if val else None, y["val"] if val else None, x["test"],
                     y["test"], "classification", 2, cfg)


def _same(a, b):
    assert a.to_dict() == b.to_dict()
    assert a.predictions.dtype == b.predictions.dtype and np.array_equal(a.predictions, b.predictions)


def test_a_hit_returns_the_fitted_results_exactly(tmp_path, data):
    x, y = data
    cache = ProbeCache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return [_fit(x, y)]

    key = probe_key([array_digest(x[s]) for s in x], {"config": FAST})
    first = cache.results(key, compute)[0]
    again = cache.results(key, compute)[0]
    assert len(calls) == 1 and (cache.hits, cache.misses) == (1, 1)
    _same(first, again)
    _same(again, _fit(x, y))  # deterministic probe: the stored result is what fitting gives again
    stored = json.loads(cache.path(key).read_text())  # plain JSON, nothing pickled
    assert stored["key"] == key and stored["results"][0]["predictions"]["dtype"] == np.dtype(np.int64).str


def test_regression_without_validation_and_batched_probes_round_trip(tmp_path, data):
    x, y = data
    cache = ProbeCache(tmp_path)
    reg = fit_probe(x["train"], x["train"][:, :2] * 2, None, None, x["test"], x["test"][:, :2] * 2, "regression",
                    None, FAST)
    assert np.isnan(reg.best_val_loss) and reg.predictions.dtype == np.float32
    cache.store("a" * 64, [reg])
    back = cache.load("a" * 64, count=1)[0]
    assert np.isnan(back.best_val_loss)
    back.best_val_loss = reg.best_val_loss = 0.0  # NaN != NaN in the dict comparison
    _same(reg, back)
    blocks = {s: [x[s][:, :3], x[s][:, 3:]] for s in x}
    many = fit_linear_probes(blocks["train"], y["train"], blocks["val"], y["val"], blocks["test"], y["test"],
                             [(0,), (1,), (0, 1)], "classification", 2, FAST)
    cache.store("b" * 64, many)
    for a, b in zip(many, cache.load("b" * 64, count=3)):
        _same(a, b)


def test_every_input_and_setting_is_in_the_key(data, monkeypatch):
    x, y = data
    arrays = [array_digest(a) for a in (x["train"], x["val"], x["test"], y["train"], y["val"], y["test"], None)]
    settings = {"fit": "fit_probe", "config": FAST, "task": "classification", "n_classes": 2}
    base = probe_key(arrays, settings)
    assert base == probe_key(list(arrays), dict(settings))
    changed = x["train"].copy()
    changed[3, 4] = np.nextafter(changed[3, 4], np.float32(np.inf))  # one value, one ulp
    keys = {probe_key([array_digest(changed), *arrays[1:]], settings)}
    ysel = y["test"].copy()
    ysel[0] = 1 - ysel[0]
    keys.add(probe_key([*arrays[:5], array_digest(ysel), None], settings))
    keys.add(probe_key([*arrays[:6], array_digest(np.ones(50, bool))], settings))  # a row selection
    keys.add(probe_key(arrays[:6] + [array_digest(np.arange(50) % 2 == 0)], settings))
    keys.add(probe_key([array_digest(x["train"].astype(np.float64)), *arrays[1:]], settings))  # dtype
    keys.add(probe_key([array_digest(x["train"].reshape(60, 12)), *arrays[1:]], settings))  # shape
    for field, value in [("lr", 0.02), ("weight_decay", 0.0), ("max_epochs", 41), ("patience", 6), ("seed", 1),
                         ("batch_size", 64), ("hidden", 8), ("threads", None), ("class_weight", "balanced")]:
        cfg = ProbeConfig(**{**FAST.__dict__, field: value})
        keys.add(probe_key(arrays, {**settings, "config": cfg}))
    keys.add(probe_key(arrays, {**settings, "config": ProbeConfig(kind="mlp", max_epochs=40, patience=5)}))
    keys.add(probe_key(arrays, {**settings, "task": "regression"}))
    keys.add(probe_key(arrays, {**settings, "n_classes": 3}))
    monkeypatch.setattr(pc, "code_version", lambda: "other probe code")
    keys.add(probe_key(arrays, settings))
    assert base not in keys and len(keys) == 19  # 6 arrays, 9 config fields, kind, task, classes, code


def test_code_version_hashes_the_probe_sources():
    v = code_version()
    assert len(v) == 64 and v == code_version()
    code_version.cache_clear()
    assert code_version() == v


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": pc.FORMAT, "key": "x", "results": []}),
                                     json.dumps({"format": pc.FORMAT, "key": None, "results": [{"probe": 1}]}), ""])
def test_an_unreadable_entry_is_fitted_again_and_replaced(tmp_path, data, content):
    x, y = data
    cache = ProbeCache(tmp_path)
    key = probe_key([array_digest(x["train"])], {"config": FAST})
    path = cache.path(key)
    path.parent.mkdir(parents=True)
    path.write_text(content.replace('"key": null', f'"key": "{key}"'))
    with pytest.warns(UserWarning, match="probe cache: ignoring the unreadable entry"):
        got = cache.results(key, lambda: [_fit(x, y)])[0]
    _same(got, _fit(x, y))
    assert cache.misses == 1
    _same(cache.load(key, count=1)[0], got)  # the entry was rewritten


def test_a_wrong_count_is_not_a_hit(tmp_path, data):
    x, y = data
    cache = ProbeCache(tmp_path)
    cache.store("c" * 64, [_fit(x, y)])
    with pytest.warns(UserWarning, match="1 results, expected 2"):
        assert cache.load("c" * 64, count=2) is None


def test_default_folder_follows_mmib_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MMIB_CACHE_DIR", str(tmp_path))
    assert ProbeCache().folder == tmp_path / "probes"
