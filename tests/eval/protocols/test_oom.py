"""mmib.eval.protocols.oom: the oom protocol's row, chance levels, report section and option errors, and an
empty disagreement set reported as undefined, on a COX method built on the testbed."""

from __future__ import annotations

import numpy as np
import pytest

from mmib.errors import MMIBError
from mmib.eval.oom import evaluate_oom


def test_oom_protocol_rows_chance_and_report(trained_cox, tmp_path):
    from mmib.eval.evaluate import evaluate
    from mmib.eval.report import render_markdown

    meth, dm = trained_cox
    res = evaluate(meth, dm, [{"oom": {"ks": [1, 5]}}], out_dir=tmp_path, progress=False)
    p = res["protocols"]["oom"]
    (row,) = p["rows"]
    direct = evaluate_oom(meth, dm)
    assert row["metrics"]["accuracy"] == direct["accuracy"]
    assert row["metrics"]["R@1/oom->im"] == direct["R@1/oom->im"]
    gallery = direct["gallery_size"]
    assert row["chance"]["R@5/im->oom"] == pytest.approx(5 / gallery)
    assert row["chance"]["accuracy"] == pytest.approx(1 / dm.spec.n_classes)
    md = render_markdown(res)
    assert "out-of-modal generalization" in md and "R@1/oom->im" in md
    with pytest.raises(MMIBError, match=r"unknown option of protocol 'oom' 'k'; did you mean 'ks'\? valid: ks, split"):
        evaluate(meth, dm, [{"oom": {"k": 1}}], out_dir=tmp_path / "bad", progress=False)


def test_oom_protocol_empty_agreement_set_is_undefined_not_an_error(trained_cox, tmp_path, monkeypatch):
    # every IM head agreeing leaves the disagreement set empty: its accuracy is NaN (undefined) and said so, while a
    # NaN anywhere else is still refused
    import mmib.eval.oom as oom_mod
    from mmib.eval.evaluate import evaluate

    meth, dm = trained_cox
    real = oom_mod.evaluate_oom
    monkeypatch.setattr(oom_mod, "evaluate_oom", lambda *a, **k: {**real(*a, **k), "acc_disagree": float("nan"),
                                                                  "frac_disagree": 0.0})
    res = evaluate(meth, dm, [{"oom": {}}], out_dir=tmp_path / "a", progress=False)
    p = res["protocols"]["oom"]
    assert np.isnan(p["rows"][0]["metrics"]["acc_disagree"])
    assert any("acc_disagree undefined" in n and "disagreement set" in n for n in p["notes"])
    monkeypatch.setattr(oom_mod, "evaluate_oom", lambda *a, **k: {**real(*a, **k), "accuracy": float("nan")})
    with pytest.raises(MMIBError, match="oom protocol: metric 'accuracy' is NaN"):
        evaluate(meth, dm, [{"oom": {}}], out_dir=tmp_path / "b", progress=False)
