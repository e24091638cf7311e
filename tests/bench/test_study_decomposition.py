"""The decomposition study's registered protocols (mmib.bench.study_decomposition)."""

import pytest
import torch

import mmib.bench.study_decomposition  # noqa: F401  (registers the protocols)
from mmib.data.datamodule import MultimodalDataModule
from mmib.data.synthetic.rus import make_rus
from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.protocols import PROTOCOLS, EvalContext, run_probe
from mmib.methods.registry import build_method

SMALL = {"embed_dim": 16, "vector_tokens": 4, "fusion": {"n_heads": 2, "dim_feedforward": 32},
         "head_hidden": 32, "projection_dim": 16}
ENC = {"vector": {"hidden": [32]}}


def _ctx(seed=3):
    ds = make_rus(n_samples=300, dim=32)
    dm = MultimodalDataModule(ds, batch_size=64, seed=0)
    torch.manual_seed(123)
    method = build_method("comm", ds.spec, SMALL, ENC)
    with torch.no_grad():  # stands for training: weights no seeded initialisation gives
        for p in method.parameters():
            p.add_(0.5)
    return EvalContext(method=method, dm=dm, seed=seed)


def test_random_init_probe_probes_a_freshly_seeded_copy():
    ctx = _ctx()
    res = PROTOCOLS["random_init_probe"](ctx, {"representations": ["concat", "fused"],
                                               "probe_options": {"class_weight": "balanced"}})
    assert [r["id"] for r in res["rows"]] == ["random_init/concat/linear", "random_init/fused/linear"]
    assert all(r["source"] == "random_init" for r in res["rows"])
    # the same numbers as the probe protocol on a copy built by hand under torch.manual_seed(run seed)
    torch.manual_seed(ctx.seed)
    fresh = build_method("comm", ctx.method.spec, SMALL, ENC).eval()
    ref = run_probe(EvalContext(method=fresh, dm=ctx.dm, seed=ctx.seed),
                    {"representations": ["concat", "fused"], "baseline_raw": False, "own_predictions": False,
                     "probe_options": {"class_weight": "balanced"}})
    for got, want in zip(res["rows"], ref["rows"]):
        assert got["metrics"] == pytest.approx(want["metrics"])
    # ... which is not the trained method (the check above would pass vacuously if both were the same network)
    b = ctx.dm.split_batch("test")
    with torch.no_grad():
        assert not torch.allclose(fresh.fuse(b), ctx.method.eval().fuse(b))
    # the global RNG is left as it was
    torch.manual_seed(5)
    a = torch.rand(1)
    torch.manual_seed(5)
    PROTOCOLS["random_init_probe"](ctx, {"representations": ["fused"]})
    assert torch.equal(torch.rand(1), a)


def test_random_init_probe_methods_filter_and_errors():
    ctx = _ctx()
    res = PROTOCOLS["random_init_probe"](ctx, {"methods": ["cross"]})
    assert res["rows"] == [] and "skipped" in res["notes"][0]
    assert PROTOCOLS["random_init_probe"](ctx, {"methods": ["comm"], "representations": ["fused"]})["rows"]
    with pytest.raises(UnknownNameError, match="random_init_probe"):
        PROTOCOLS["random_init_probe"](ctx, {"seed": 1})
    with pytest.raises(MMIBError, match="methods"):
        PROTOCOLS["random_init_probe"](ctx, {"methods": "comm"})


def test_decomposition_suite_runs_comms_synergy_protocol():
    """The packaged suite pretrains CoMM on biased pairs and probes on unbiased pairs of the same world, with the
    random-init control and class-balanced probes (an unweighted probe of the ~10 %-positive Trifeature synergy
    label settles on the majority class)."""
    from mmib.bench.suite import load_suite

    suite = load_suite("decomposition")
    data = {d.name: d for d in suite.data}
    for name in ("rus_sim-biased", "trifeature-syn-biased"):
        assert data[name].options["biased"] is True and data[name].eval_data["options"]["biased"] is False
        assert any(v.name == "comm" and v.runs_on(name) for v in suite.methods)
    kinds = {next(iter(p)) if isinstance(p, dict) else p: p for p in suite.protocols}
    assert kinds["probe"]["probe"]["probe_options"] == {"class_weight": "balanced"}
    assert kinds["random_init_probe"]["random_init_probe"]["methods"] == ["comm"]
    assert "random_init_probe" in PROTOCOLS
