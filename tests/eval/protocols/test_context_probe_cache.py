"""mmib.eval.protocols.context: the raw-feature probes of the probe, info_probe and subsets protocols are read back
from the probe cache (the same rows as fitting them), the method's probes never are, and other data misses."""

import pytest

from mmib.data.datamodule import MultimodalDataModule
from mmib.eval.probe.cache import ProbeCache
from mmib.eval.protocols import EvalContext, run_info_probe, run_probe, run_subsets

from ..conftest import IdentityMethod, make_latent_dataset


def _rows(res):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in res["rows"]]


def _ctx(dm, cache):
    return EvalContext(IdentityMethod(dm.spec), dm, probe_cache=cache)


def test_probe_protocol_reads_the_raw_rows_back(latent_dm, tmp_path, fast_probe):
    opts = {"probes": ["linear", "mlp"], "probe_options": {**fast_probe, "hidden": 16}}
    plain = run_probe(_ctx(latent_dm, None), opts)
    cache = ProbeCache(tmp_path)
    first = run_probe(_ctx(latent_dm, cache), opts)
    assert (cache.hits, cache.misses) == (0, 2)  # the two raw probes; the method's two are never cached
    second = run_probe(_ctx(latent_dm, cache), opts)
    assert (cache.hits, cache.misses) == (2, 2)
    assert _rows(plain) == _rows(first) == _rows(second)
    assert len(list(tmp_path.rglob("*.json"))) == 2
    # the identity method's features are the raw ones: the cached raw rows equal the fitted method rows
    by = {r["id"]: r["metrics"] for r in second["rows"]}
    assert by["raw/concat/linear"] == by["method/concat/linear"] and by["raw/concat/mlp"] == by["method/concat/mlp"]


def test_other_data_or_probe_options_miss(latent_dm, tmp_path, fast_probe):
    cache = ProbeCache(tmp_path)
    opts = {"probe_options": fast_probe}
    run_probe(_ctx(latent_dm, cache), opts)
    other = MultimodalDataModule(make_latent_dataset(seed=1), batch_size=64, seed=0)
    run_probe(_ctx(other, cache), opts)
    resplit = MultimodalDataModule(make_latent_dataset(), batch_size=64, seed=1)  # same data, other split
    run_probe(_ctx(resplit, cache), opts)
    run_probe(_ctx(latent_dm, cache), {"probe_options": {**fast_probe, "weight_decay": 1e-3}})
    assert (cache.hits, cache.misses) == (0, 4)
    run_probe(_ctx(latent_dm, cache), {"probe_options": fast_probe, "modalities": ["a", "b"]})  # other features
    assert (cache.hits, cache.misses) == (0, 5)


def test_info_probe_raw_rows_with_a_row_selection(latent_dm, tmp_path, fast_probe):
    opts = {"latents": ["za", "cont"], "include_label": False, "representations": ["concat"],
            "probe_options": fast_probe, "where": {"cont": {"za": 1}}}
    plain = run_info_probe(_ctx(latent_dm, None), opts)
    cache = ProbeCache(tmp_path)
    first = run_info_probe(_ctx(latent_dm, cache), opts)
    n_raw = sum(r["source"] == "raw" for r in first["rows"])
    assert n_raw == 2 * 4 and (cache.hits, cache.misses) == (0, n_raw)  # raw:a, raw:b, raw:c, raw × 2 latents
    second = run_info_probe(_ctx(latent_dm, cache), opts)
    assert (cache.hits, cache.misses) == (n_raw, n_raw)
    assert _rows(plain) == _rows(first) == _rows(second) and plain["matrix"] == second["matrix"]
    run_info_probe(_ctx(latent_dm, cache), {**opts, "where": {"cont": {"za": 2}}})  # other rows for cont
    assert (cache.hits, cache.misses) == (2 * n_raw - 4, n_raw + 4)


@pytest.mark.parametrize("sizes", [[1, 3], None])
def test_subsets_raw_rows(latent_dm, tmp_path, fast_probe, sizes):
    opts = {"baseline_raw": True, "sizes": sizes, "probe_options": fast_probe}
    plain = run_subsets(_ctx(latent_dm, None), opts)
    cache = ProbeCache(tmp_path)
    run_subsets(_ctx(latent_dm, cache), opts)
    assert (cache.hits, cache.misses) == (0, 1)  # the raw subset probes are trained together: one entry
    again = run_subsets(_ctx(latent_dm, cache), opts)
    assert (cache.hits, cache.misses) == (1, 1)
    assert _rows(plain) == _rows(again)
