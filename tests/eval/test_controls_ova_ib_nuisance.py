"""OVA-IB's minimality control (slow), with the controls suite's settings (src/mmib/bench/suites/controls.yaml, data
nuisance3, variants ova_ib-beta0 / ova_ib-beta10): the share of each modality's embedding variance that its private
nuisance explains (the suite measures the same with its embedding_share protocol, mmib.bench.study_controls).
The suite's linear probe asks whether the nuisance is *decodable* (it is, with any beta: R^2 about
0.95); this asks how much of the embedding it *occupies*, which is what the minimality term
||z^(m) - mean_{i != m} z^(i)||^2 acts on. docs/results/controls.md: beta = 1 (the paper's) leaves it as beta = 0
does (about 0.25 on seeds 0-2), beta = 10 lowers it to about 0.1."""

import numpy as np
import pytest
import torch

from mmib.bench.study_controls import variance_share


def nuisance_and_essence_share(run_dir) -> tuple[float, float]:
    """Mean over modalities of the variance share of nuisance_<m> and of the essence in L2-normalized embeddings of
    the test split (the space the objective and its minimality term see)."""
    from mmib.runs import load_run

    _, method, dm = load_run(run_dir)
    method.eval()
    dm.setup("test")
    zs, lats = {}, {}
    with torch.no_grad():
        for b in dm.test_dataloader():
            for m, v in method.embed(b, None, space="embedding").items():
                zs.setdefault(m, []).append(torch.nn.functional.normalize(v.double(), dim=1).numpy())
            for k, v in b["latents"].items():
                lats.setdefault(k, []).append(np.asarray(v, dtype=np.float64).reshape(len(v), -1))
    zs = {m: np.concatenate(v) for m, v in zs.items()}
    lats = {k: np.concatenate(v) for k, v in lats.items()}
    nuis = np.mean([variance_share(zs[m], lats[f"nuisance_{m}"]) for m in zs])
    ess = np.mean([variance_share(zs[m], lats["essence"]) for m in zs])
    return float(nuis), float(ess)


def _train(tmp_path, variant: str):
    from mmib.bench.suite import load_suite
    from mmib.config import compose_config
    from mmib.engine import train

    suite = load_suite("controls")
    v = next(m for m in suite.methods if m.name == variant)
    d = next(e for e in suite.data if e.name == "nuisance3")
    cfg = compose_config([f"method={v.method}", f"data={d.data}"]
                         + [f"data.{k}={x}" for k, x in d.options.items()]
                         + [f"method.{k}={x}" for k, x in v.overrides.items()]
                         + [f"{k}={x}" for k, x in d.config.items()]
                         + ["trainer.enable_progress_bar=false", f"run_dir={tmp_path}", f"name={variant}", "seed=0"])
    return train(cfg).run_dir


@pytest.mark.slow
def test_a_strong_minimality_term_sheds_the_private_nuisance(tmp_path):
    n0, e0 = nuisance_and_essence_share(_train(tmp_path, "ova_ib-beta0"))
    n10, e10 = nuisance_and_essence_share(_train(tmp_path, "ova_ib-beta10"))
    assert n10 < n0 - 0.05  # measured on seed 0: 0.095 vs 0.234
    assert e10 > e0  # the shared essence takes the room: 0.63 vs 0.41
