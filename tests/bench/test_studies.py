"""mmib.bench.studies: the study protocols ``retrieval_mean`` and ``subset_sizes`` (the built-in protocols' rows
averaged as the papers table them) and ``embedding_geometry`` (participation ratio, instance retrieval, class hits)."""

import pytest
import torch

from mmib.errors import MMIBError, UnknownNameError


class _Spec:
    task = "classification"
    name = "fake"


class _Ctx:
    spec = _Spec()
    modalities = ("a", "b", "c")


def test_retrieval_mean_averages_each_metric_over_the_directions(monkeypatch):
    import mmib.eval.protocols as P
    from mmib.bench.studies import retrieval_mean

    rows = [{"id": f"method/{d}", "source": "method", "direction": d, "n_candidates": 300,
             "metrics": {"R@1": r, "mAP": m, "class_top1": 0.5, "acc_1_of_10": a, "R@10": 0.9},
             "chance": {"R@1": 1 / 300, "mAP": 0.02, "class_top1": 0.1, "acc_1_of_10": 0.1}}
            for d, r, m, a in [("b+c->a", 0.1, 0.2, 0.6), ("a+c->b", 0.2, 0.4, 0.7), ("a+b->c", 0.6, 0.9, 0.8)]]
    rows.append({**rows[0], "id": "raw/b+c->a", "source": "raw", "metrics": {**rows[0]["metrics"], "R@1": 0.0}})
    monkeypatch.setattr(P, "run_retrieval", lambda ctx, opts: {"rows": rows, "notes": [], "options": opts})
    res = retrieval_mean(_Ctx(), {"directions": "auto"})
    by = {r["id"]: r for r in res["rows"]}
    assert set(by) == {"method/mean", "raw/mean"}
    m = by["method/mean"]
    assert m["metrics"] == pytest.approx({"R@1": 0.3, "mAP": 0.5, "class_top1": 0.5, "acc_1_of_10": 0.7})
    assert m["chance"]["R@1"] == pytest.approx(1 / 300) and "R@10" not in m["metrics"]
    assert by["raw/mean"]["metrics"]["R@1"] == 0.0
    with pytest.raises(MMIBError, match="metrics"):
        retrieval_mean(_Ctx(), {"metrics": "R@1"})


def test_subset_sizes_averages_over_the_subsets_of_each_size(monkeypatch):
    import mmib.eval.protocols as P
    from mmib.bench.studies import subset_sizes

    acc = {("a",): 0.5, ("b",): 0.6, ("c",): 0.7, ("a", "b"): 0.8, ("a", "c"): 0.8, ("b", "c"): 0.9,
           ("a", "b", "c"): 1.0}
    rows = [{"id": f"method/{'+'.join(s)}/linear", "source": "method", "probe": "linear", "size": len(s),
             "subset": list(s), "metrics": {"accuracy": v, "macro_f1": v / 2}, "chance": {"accuracy": 0.1}}
            for s, v in acc.items()]
    rows.append({"id": "method/a/own", "source": "method", "size": 1, "metrics": {"accuracy": 0.0}})  # not a probe
    monkeypatch.setattr(P, "run_subsets", lambda ctx, opts: {"rows": rows, "notes": [], "options": opts,
                                                             "primary_metric": "accuracy"})
    res = subset_sizes(_Ctx(), {"probe": "linear"})
    by = {r["id"]: r["metrics"] for r in res["rows"]}
    assert {k: set(v) for k, v in by.items()} == {k: {"accuracy"} for k in ("method/size-1", "method/size-2",
                                                                              "method/size-3", "method/all-subsets")}
    assert {k: v["accuracy"] for k, v in by.items()} == pytest.approx(
        {"method/size-1": 0.6, "method/size-2": 2.5 / 3, "method/size-3": 1.0, "method/all-subsets": 5.3 / 7})


class _Geometry:
    """A method whose embeddings are given: ``a`` one-hot rows (participation ratio 1), ``b`` each row's one-hot
    twice (ratio 2) in the order ``perm``; the scorer is the dot product of the query ``a`` with the candidates."""

    name = "fixed"
    device = torch.device("cpu")

    def __init__(self, perm, own_scorer=True):
        eye = torch.eye(6)
        self.emb = {"a": torch.cat([eye, torch.zeros(6, 6)], 1), "b": torch.cat([eye, eye], 1)[perm]}
        self.objective = type("Obj", (), {"score": staticmethod(lambda cands, q: q @ cands[0].T)})() \
            if own_scorer else None

    def eval(self):
        return self

    def embed(self, batch, space):
        assert space == "embedding" and batch["y"].shape == (6,)
        return self.emb

    def score(self, cands, q):
        return q @ cands["b"].T


def _geometry_ctx(method):
    from types import SimpleNamespace

    y = torch.tensor([0, 0, 1, 1, 2, 2])
    return SimpleNamespace(method=method, dm=SimpleNamespace(split_batch=lambda split: {"y": y, "x": {}}))


@pytest.mark.parametrize("own_scorer", [True, False])
def test_embedding_geometry_closed_form(own_scorer):
    from mmib.bench.studies import embedding_geometry

    res = embedding_geometry(_geometry_ctx(_Geometry(torch.arange(6), own_scorer)), {"split": "val"})
    (row,) = res["rows"]
    m = row["metrics"]
    assert m["participation_ratio/a"] == pytest.approx(1.0) and m["participation_ratio/b"] == pytest.approx(2.0)
    assert m["R@1"] == 1.0 and m["top1_same_class"] == 1.0  # every query finds its own row
    assert m["inverse_rows_per_class"] == pytest.approx(3 / 6) and row["chance"] == {"R@1": pytest.approx(1 / 6)}
    assert res["primary_metric"] == "R@1" and res["notes"] == ["val split: 6 rows; retrieval of a from b"]
    # candidates swapped within each class: no instance is found, every top-1 has the query's class
    swapped = embedding_geometry(_geometry_ctx(_Geometry(torch.tensor([1, 0, 3, 2, 5, 4]), own_scorer)))
    m = swapped["rows"][0]["metrics"]
    assert m["R@1"] == 0.0 and m["top1_same_class"] == 1.0 and swapped["options"] == {"split": "test"}


def test_embedding_geometry_takes_only_a_split():
    from mmib.bench.studies import embedding_geometry

    with pytest.raises(UnknownNameError, match="unknown option of protocol 'embedding_geometry' 'splt'; did you mean "
                                               "'split'"):
        embedding_geometry(_geometry_ctx(_Geometry(torch.arange(6))), {"splt": "val"})
