"""Protocols on a data set whose information structure is known, through the Method interface only."""

import matplotlib.image as mpimg
import numpy as np
import pytest

from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.evaluate import evaluate
from mmib.eval.protocols import (
    EvalContext,
    modality_subsets,
    parse_protocols,
    retrieval_directions,
    run_info_probe,
    run_probe,
    run_retrieval,
    run_subsets,
)
from mmib.eval.report import load_results, render_comparison

from .conftest import IdentityMethod, PredictingMethod

FAST = {"max_epochs": 60, "patience": 10}


def _png_ok(path):
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50


def test_subset_enumeration_and_directions():
    assert len(modality_subsets(["a", "b", "c", "d"])) == 15
    assert modality_subsets(["a", "b", "c"], [1, 3]) == [("a",), ("b",), ("c",), ("a", "b", "c")]
    with pytest.raises(MMIBError, match="sizes must lie in 1..3"):
        modality_subsets(["a", "b", "c"], [4])
    assert retrieval_directions("auto", ["a", "b", "c"]) == [(("b", "c"), "a"), (("a", "c"), "b"), (("a", "b"), "c")]
    assert retrieval_directions("c+a->b", ["a", "b", "c"]) == [(("a", "c"), "b")]
    with pytest.raises(UnknownNameError, match="'d'"):
        retrieval_directions(["a->d"], ["a", "b", "c"])
    with pytest.raises(MMIBError, match="also a query"):
        retrieval_directions(["a+b->b"], ["a", "b", "c"])


def test_parse_protocols_forms_and_errors():
    ps = parse_protocols(["probe", {"subsets": {"probe": "mlp"}}, {"protocol": "probe", "name": "p2", "probes": ["mlp"]}])
    assert [(p.kind, p.name) for p in ps] == [("probe", "probe"), ("subsets", "subsets"), ("probe", "p2")]
    assert ps[2].options == {"probes": ["mlp"]}
    with pytest.raises(UnknownNameError, match="unknown protocol 'probes'"):
        parse_protocols(["probes"])
    with pytest.raises(MMIBError, match="used twice"):
        parse_protocols(["probe", "probe"])


def test_probe_protocol_rows_and_missing_capabilities(latent_dm):
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm)
    res = run_probe(ctx, {"probes": ["linear"], "representations": ["concat", "fused", "components"],
                          "probe_options": FAST})
    ids = [r["id"] for r in res["rows"]]
    assert ids == ["method/concat/linear", "method/fused/linear", "method/component:A/linear",
                   "method/component:B/linear", "raw/concat/linear"]
    by = {r["id"]: r for r in res["rows"]}
    # the identity method's representation IS the raw input: same features, same seed -> same numbers
    assert by["method/concat/linear"]["metrics"] == by["raw/concat/linear"]["metrics"]
    assert by["method/concat/linear"]["metrics"]["accuracy"] > 0.9  # y = shared, held by a and b
    assert "cross-entropy" in by["method/concat/linear"]["probe_description"]

    from mmib.methods.registry import build_method

    clip = build_method("clip", latent_dm.spec, {"representation_dim": 16, "embed_dim": 8, "head_layers": 1},
                        {"vector": {"hidden": [16]}})
    res = run_probe(EvalContext(clip, latent_dm), {"representations": ["concat", "fused", "components"],
                                                   "baseline_raw": False, "probe_options": FAST})
    assert [r["id"] for r in res["rows"]] == ["method/concat/linear"]
    assert any("fused skipped" in n and "has no fused representation" in n for n in res["notes"])
    assert any("components skipped" in n for n in res["notes"])
    with pytest.raises(UnknownNameError, match="unknown option of protocol 'probe' 'probe'"):
        run_probe(EvalContext(clip, latent_dm), {"probe": "linear"})


def test_own_predictions_row(latent_dm):
    res = run_probe(EvalContext(PredictingMethod(latent_dm.spec), latent_dm),
                    {"baseline_raw": False, "probe_options": FAST})
    own = [r for r in res["rows"] if r["id"] == "method/predict/own"]
    assert len(own) == 1
    te_y = latent_dm.dataset.y.numpy()[latent_dm.indices["test"]]
    assert own[0]["metrics"]["accuracy"] == pytest.approx(np.mean(te_y == 0))  # always predicts class 0


def test_subsets_table_and_heatmap(latent_dm, tmp_path):
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, out_dir=tmp_path)
    res = run_subsets(ctx, {"probe_options": FAST})
    subsets = ["+".join(r["subset"]) for r in res["rows"]]
    assert subsets == ["a", "b", "c", "a+b", "a+c", "b+c", "a+b+c"]  # 2^3 - 1
    acc = {s: r["metrics"]["accuracy"] for s, r in zip(subsets, res["rows"])}
    assert acc["c"] < 0.5 < acc["a"]  # c holds nothing about y = shared; a does
    _png_ok(tmp_path / res["plots"]["subsets_heatmap"])


def test_retrieval_protocol_known_answer(latent_dm, tmp_path):
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, out_dir=tmp_path)
    res = run_retrieval(ctx, {"directions": ["a->b", "c->a", "a+b->c"]})
    by = {r["id"]: r for r in res["rows"]}
    # a and b share a per-sample key (weaker than the class centres): each sample's own b is found far above
    # chance (R@1 = 1/91 here); c is unrelated to a (dims differ: no raw row)
    assert by["method/a->b"]["metrics"]["R@1"] > 10 * by["method/a->b"]["chance"]["R@1"]
    assert by["method/a->b"]["metrics"]["R@10"] > 0.5
    assert by["method/a->b"]["metrics"]["mAP"] == by["method/a->b"]["metrics"]["MRR"]
    assert "raw/c->a" not in by and any("raw dimensions" in n for n in res["notes"])
    # identity embeddings + the default mean-cosine scorer: the raw cosine baseline gives the same numbers
    assert by["raw/a->b"]["metrics"] == by["method/a->b"]["metrics"]
    n = by["method/a->b"]["n_candidates"]
    assert n == len(latent_dm.indices["test"]) and by["method/a->b"]["chance"]["R@1"] == pytest.approx(1 / n)
    _png_ok(tmp_path / res["plots"]["retrieval"])
    # the Symile paper's metrics beside: class-level top-1 (label = shared, which a and b both carry) and 1 of 10
    ab = by["method/a->b"]
    assert ab["chance"]["acc_1_of_10"] == pytest.approx(0.1) and ab["metrics"]["acc_1_of_10"] > 0.5
    assert ab["metrics"]["class_top1"] > 2 * ab["chance"]["class_top1"] and ab["chance"]["class_top1"] < 0.5
    assert by["method/c->a"]["metrics"]["class_top1"] < by["method/a->b"]["metrics"]["class_top1"]
    assert [r["id"] for r in run_retrieval(ctx, {"directions": "last"})["rows"]] == ["method/a+b->c"]


def test_information_probes_show_what_each_representation_holds(latent_dm, tmp_path):
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, out_dir=tmp_path)
    res = run_info_probe(ctx, {"include_raw": False, "probe_options": FAST})
    m = res["matrix"]
    assert m["latents"] == ["za", "zb", "shared", "cont", "y"]
    assert m["representations"] == ["rep:a", "rep:b", "rep:c", "concat", "fused", "component:A", "component:B"]
    v = {(r, lat): m["values"][i][j] for i, r in enumerate(m["representations"]) for j, lat in enumerate(m["latents"])}
    ch = m["chance"]
    assert v["rep:a", "za"] > 0.9 and v["rep:a", "zb"] < ch["zb"] + 0.1  # a holds za, not zb
    assert v["rep:b", "zb"] > 0.9 and v["rep:b", "za"] < ch["za"] + 0.1
    assert v["rep:a", "shared"] > 0.8 and v["rep:b", "shared"] > 0.8  # redundant information
    assert v["rep:c", "cont"] > 0.5 and v["rep:a", "cont"] < 0.1  # R² for the continuous latent
    assert m["kinds"]["cont"] == "regression" and ch["cont"] == 0.0
    assert v["concat", "za"] > 0.9 and v["concat", "zb"] > 0.9
    _png_ok(tmp_path / res["plots"]["info_probe_matrix"])


def test_info_probe_without_latents_is_skipped_with_a_note(latent_dm):
    from mmib.data.datamodule import MultimodalDataModule
    from mmib.data.dataset import MultimodalDataset
    from mmib.data.spec import DatasetSpec

    ds = latent_dm.dataset
    spec = DatasetSpec("nolat", ds.spec.modalities, task="classification", n_classes=3)
    dm = MultimodalDataModule(MultimodalDataset(spec, {k: v.numpy() for k, v in ds.x.items()}, y=ds.y), seed=0)
    res = run_info_probe(EvalContext(IdentityMethod(spec), dm))
    assert res["rows"] == [] and "no ground-truth latents" in res["notes"][0]


def test_evaluate_writes_json_report_and_plots(latent_dm, tmp_path):
    method = IdentityMethod(latent_dm.spec)
    protocols = [{"probe": {"probe_options": FAST}}, {"subsets": {"sizes": [1], "probe_options": FAST}},
                 {"retrieval": {"directions": ["a->b"]}}, {"plots": {"max_points": 120}}]
    r = evaluate(method, latent_dm, protocols, out_dir=tmp_path / "e1", seed=3, progress=False)
    assert r["complete"] and r["seed"] == 3 and set(r["timings"]) >= {"probe", "subsets", "retrieval", "plots"}
    loaded = load_results(tmp_path / "e1")
    assert loaded["protocols"]["probe"]["rows"][0]["metrics"] == r["protocols"]["probe"]["rows"][0]["metrics"]
    assert loaded["versions"]["torch"] and "git_commit" in loaded
    md = (tmp_path / "e1" / "report.md").read_text()
    assert "| representation | probe | dim | accuracy |" in md and "![tsne](plots/tsne.png)" in md
    _png_ok(tmp_path / "e1" / "plots" / "tsne.png")
    assert "training curves skipped" in " ".join(r["protocols"]["plots"]["notes"])  # no run folder here
    cmp = render_comparison([r, r], ["x", "y"])
    assert "## probe: accuracy" in cmp and "| row | x | y |" in cmp


# ------------------------------------------------------------------------------------------------ UMAP (viz extra)
class _FakeUMAP:
    """Stands in for umap.UMAP: records its arguments and returns a fixed 2-D embedding."""

    calls: list = []

    def __init__(self, n_components=2, random_state=None):
        self.n_components, self.random_state = n_components, random_state

    def fit_transform(self, x):
        _FakeUMAP.calls.append((self.n_components, self.random_state, x.shape))
        t = np.arange(len(x), dtype=np.float64)
        return np.stack([np.cos(t), np.sin(t)], 1)


def _fake_umap_module():
    import importlib.machinery
    import types

    mod = types.ModuleType("umap")
    mod.__spec__ = importlib.machinery.ModuleSpec("umap", None)  # so importlib.util.find_spec sees it as installed
    mod.UMAP = _FakeUMAP
    return mod


@pytest.mark.parametrize("setting", [True, "auto"])
def test_umap_plot_with_the_extra_installed(latent_dm, tmp_path, monkeypatch, setting):
    import sys

    from mmib.eval.protocols import run_plots

    monkeypatch.setitem(sys.modules, "umap", _fake_umap_module())
    _FakeUMAP.calls = []
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, seed=4, out_dir=tmp_path)
    res = run_plots(ctx, {"curves": False, "tsne": False, "umap": setting, "max_points": 50})
    assert res["plots"] == {"umap": "plots/umap.png"}
    assert not any("UMAP skipped" in n for n in res["notes"])
    _png_ok(tmp_path / "plots" / "umap.png")
    # one call per panel (the method's representation, the raw features), seeded, on the sampled points
    assert _FakeUMAP.calls == [(2, 4, (50, 19)), (2, 4, (50, 19))]


def test_umap_without_the_extra(latent_dm, tmp_path, monkeypatch):
    import sys

    from mmib.errors import MissingDependencyError
    from mmib.eval.protocols import run_plots

    monkeypatch.setitem(sys.modules, "umap", None)  # importing umap fails, whether or not it is installed
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, out_dir=tmp_path)
    with pytest.raises(MissingDependencyError, match=r"needs the optional package 'umap': pip install 'mmib\[viz\]'"):
        run_plots(ctx, {"curves": False, "tsne": False, "umap": True, "max_points": 50})
    res = run_plots(ctx, {"curves": False, "tsne": False, "umap": "auto", "max_points": 50})
    assert res["plots"] == {}
    assert "UMAP skipped: install the 'viz' extra (pip install 'mmib[viz]')" in res["notes"]


# ------------------------------------------------------------------------------------------------ option aliases
def test_probe_representation_singular_is_an_alias(latent_dm):
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm)
    res = run_probe(ctx, {"representation": "fused", "baseline_raw": False, "probe_options": FAST})
    assert [r["id"] for r in res["rows"]] == ["method/fused/linear"]
    assert res["options"]["representations"] == ["fused"]
    # as `mmib eval --representation concat --option probe.representation=...` passes them: the singular wins
    res = run_probe(ctx, {"representations": ["concat"], "representation": "rep:a,fused", "baseline_raw": False,
                          "probe_options": FAST})
    assert [r["id"] for r in res["rows"]] == ["method/rep:a/linear", "method/fused/linear"]
    with pytest.raises(UnknownNameError, match=r"unknown option of protocol 'probe' 'represent'; did you mean 'representation'.*valid: .*representation,"):
        run_probe(ctx, {"represent": "fused"})


def test_info_probe_where_probes_a_latent_on_the_rows_where_it_is_expressed():
    # 'amp' shows in modality a only when gate = 1 (as an amplitude exists only on task trials): probed on every row
    # it is diluted by the gate = 0 rows, probed on gate = 1 it is clear; the condition reaches every split
    from mmib.data.datamodule import MultimodalDataModule
    from mmib.data.dataset import MultimodalDataset
    from mmib.data.spec import DatasetSpec, ModalitySpec

    rng = np.random.default_rng(0)
    n = 800
    gate, amp = rng.integers(0, 2, n), rng.integers(0, 2, n)
    a = np.stack([gate * (2 * amp - 1) * 3.0, rng.normal(size=n)], 1) + 0.3 * rng.normal(size=(n, 2))
    b = rng.normal(size=(n, 2))
    spec = DatasetSpec("gated", (ModalitySpec("a", "vector", (2,)), ModalitySpec("b", "vector", (2,))),
                       task="classification", n_classes=2, latents={"gate": 2, "amp": 2})
    dm = MultimodalDataModule(MultimodalDataset(spec, {"a": a, "b": b}, y=gate, latents={"gate": gate, "amp": amp}),
                              batch_size=64, seed=0)
    ctx = EvalContext(IdentityMethod(spec), dm)
    opts = {"include_raw": False, "include_label": False, "representations": ["rep:a"], "probe_options": FAST}
    plain = run_info_probe(ctx, opts)
    gated = run_info_probe(ctx, {**opts, "where": {"amp": {"gate": 1}}})
    score = {r["latent"]: r["metrics"]["score"] for r in plain["rows"]}
    score_g = {r["latent"]: r for r in gated["rows"]}
    assert score_g["amp"]["metrics"]["score"] > 0.95 and score["amp"] < 0.85
    te_gate = gate[dm.indices["test"]]
    assert score_g["amp"]["n_test"] == int((te_gate == 1).sum()) and score_g["amp"]["where"] == {"gate": 1}
    assert "where" not in score_g["gate"]  # other columns keep every row
    assert any("amp: probed on the rows with gate = 1" in note for note in gated["notes"])
    with pytest.raises(MMIBError, match="unknown latent of info_probe.where 'nope'; valid: amp, gate"):
        run_info_probe(ctx, {**opts, "where": {"nope": {"gate": 1}}})
    with pytest.raises(MMIBError, match="unknown latent of info_probe.where.amp 'gat'"):
        run_info_probe(ctx, {**opts, "where": {"amp": {"gat": 1}}})
    with pytest.raises(MMIBError, match="info_probe.where.amp: no train row has gate = 5"):
        run_info_probe(ctx, {**opts, "where": {"amp": {"gate": 5}}})


class _SubsetDependentMethod(IdentityMethod):
    """Each modality's representation depends on how many modalities were requested (the batched subset probes
    must not assume per-modality blocks here)."""

    name = "subset_dependent_test"

    def embed(self, batch, modalities=None, space="representation"):
        out = super().embed(batch, modalities, space)
        return {m: v * len(out) for m, v in out.items()}


def test_subsets_batched_probes_equal_one_by_one(latent_dm, monkeypatch):
    from mmib.eval.protocols import subsets as P

    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm)
    batched = run_subsets(ctx, {"probe_options": FAST, "baseline_raw": True})
    monkeypatch.setattr(P, "_batched_subset_rows", lambda *a, **k: None)
    single = run_subsets(EvalContext(IdentityMethod(latent_dm.spec), latent_dm),
                         {"probe_options": FAST, "baseline_raw": True})
    assert [r["id"] for r in batched["rows"]] == [r["id"] for r in single["rows"]]
    for a, b in zip(batched["rows"], single["rows"]):
        assert a["epochs"] == b["epochs"] and a["dim"] == b["dim"], a["id"]
        for k, v in b["metrics"].items():
            assert a["metrics"][k] == pytest.approx(v, abs=0.02), (a["id"], k)


def test_subsets_batched_probes_only_where_blocks_apply(latent_dm):
    from mmib.eval.protocols.subsets import SubsetOptions, _batched_subset_rows, modality_subsets

    subs = modality_subsets(list(latent_dm.spec.modality_names))
    ctx = EvalContext(_SubsetDependentMethod(latent_dm.spec), latent_dm)
    assert _batched_subset_rows(ctx, SubsetOptions(probe_options=FAST), subs, ["method"]) is None
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm)
    assert _batched_subset_rows(ctx, SubsetOptions(probe="mlp", probe_options=FAST), subs, ["method"]) is None
    assert _batched_subset_rows(ctx, SubsetOptions(probe_options=FAST), subs, ["method"]) is not None


def test_tsne_iterations_option(latent_dm, tmp_path, monkeypatch):
    """plots.tsne_iterations reaches scikit-learn's TSNE (default 500); below its 250-step minimum it is an error."""
    from sklearn import manifold

    from mmib.eval.protocols import run_plots

    seen = []
    fit = manifold.TSNE.fit_transform

    def recording(self, x, *a, **k):
        seen.append(self.max_iter)
        return fit(self, x, *a, **k)

    monkeypatch.setattr(manifold.TSNE, "fit_transform", recording)
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, seed=0, out_dir=tmp_path)
    assert run_plots(ctx, {"curves": False, "umap": False, "max_points": 60})["plots"] == {"tsne": "plots/tsne.png"}
    run_plots(ctx, {"curves": False, "umap": False, "max_points": 60, "tsne_iterations": 1000})
    assert seen == [500, 500, 1000, 1000]  # one map per panel: the representation and the raw features
    with pytest.raises(MMIBError, match="tsne_iterations must be an integer >= 250"):
        run_plots(ctx, {"curves": False, "umap": False, "tsne_iterations": 100})
