"""mmib.eval.protocols.retrieval: the retrieval directions and the retrieval protocol's known answers (a data
set whose modalities share a per-sample key), with the raw baseline and the Symile paper's metrics."""

import pytest

from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.protocols import (
    EvalContext,
    retrieval_directions,
    run_retrieval,
)

from ..conftest import IdentityMethod


def test_retrieval_protocol_known_answer(latent_dm, tmp_path, png_ok):
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
    png_ok(tmp_path / res["plots"]["retrieval"])
    # the Symile paper's metrics beside: class-level top-1 (label = shared, which a and b both carry) and 1 of 10
    ab = by["method/a->b"]
    assert ab["chance"]["acc_1_of_10"] == pytest.approx(0.1) and ab["metrics"]["acc_1_of_10"] > 0.5
    assert ab["metrics"]["class_top1"] > 2 * ab["chance"]["class_top1"] and ab["chance"]["class_top1"] < 0.5
    assert by["method/c->a"]["metrics"]["class_top1"] < by["method/a->b"]["metrics"]["class_top1"]
    assert [r["id"] for r in run_retrieval(ctx, {"directions": "last"})["rows"]] == ["method/a+b->c"]


def test_retrieval_directions():
    assert retrieval_directions("auto", ["a", "b", "c"]) == [(("b", "c"), "a"), (("a", "c"), "b"), (("a", "b"), "c")]
    assert retrieval_directions("c+a->b", ["a", "b", "c"]) == [(("a", "c"), "b")]
    with pytest.raises(UnknownNameError, match="'d'"):
        retrieval_directions(["a->d"], ["a", "b", "c"])
    with pytest.raises(MMIBError, match="also a query"):
        retrieval_directions(["a+b->b"], ["a", "b", "c"])
