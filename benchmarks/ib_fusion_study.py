"""The "ib-fusion" study: OMIB, IBMA and the fusion baselines on OMIB's synthetic data (and the UCI digits), with the
OMIB-specific outputs the generic bench runner does not produce (spec omib §9):

* ``info``     MINE estimates of H(v1), H(v2), I(v1;v2) and [M_l, M_u] per SIM case (computed once per case on the
               seed-0 training split; they are properties of the distribution, not of a draw);
* ``claim``    SIM-I and SIM-III x seeds: OMIB (β sampled from [M_l, M_u]) vs the same network with the OMF replaced
               by concatenation (ablation ``no_omf``) vs each unimodal branch (TRB_i on [z_i, e_i]); the logistic
               regression reference rows of Table 2 on the same split;
* ``ablations`` Table 6 switches (no_warmup, concat_fusion, no_omf, no_r) on SIM-I/SIM-III;
* ``sweep``    β from 1e-6 to 10 (log grid) on a SIM case, with ridge probes of ξ for every block a0…b2 (claim 10);
* ``suite``    every method × SIM-I/II/III (+ mfeat) × seeds;
* ``report``   ``docs/results/ib-fusion.md`` + plots (β sweep, r trace, probes) from the JSON results.

Every run's result is cached as JSON under ``--out`` (re-running skips finished runs). Usage::

    python benchmarks/ib_fusion_study.py info claim ablations sweep suite report --out runs/ib_fusion
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mmib.config import compose_config
from mmib.data.synthetic.omib_sim import reference_classifiers

SIM_ENCODER = ["encoder.vector.hidden=[512]", "encoder.vector.act=gelu"]  # App. H: two-layer MLP, GELU, 256-d
BASELINES = ["concat", "film", "bigated", "vib", "emib", "lmib", "cmib"]
BLOCKS = ("a0", "a1", "a2", "b0", "b1", "b2")


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


class Study:
    def __init__(self, out: Path, epochs: int, warmup: int, lr: float, n_samples: int, seeds: list[int],
                 mine_steps: int, mine_batch: int, mine_lr: float = 3e-4):
        self.out, self.epochs, self.warmup, self.lr = out, epochs, warmup, lr
        self.n_samples, self.seeds = n_samples, seeds
        self.mine_steps, self.mine_batch, self.mine_lr = mine_steps, mine_batch, mine_lr
        (out / "results").mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ helpers
    def path(self, key: str) -> Path:
        return self.out / "results" / f"{key}.json"

    def cached(self, key: str):
        p = self.path(key)
        return json.loads(p.read_text()) if p.is_file() else None

    def save(self, key: str, obj) -> None:
        self.path(key).write_text(json.dumps(obj, indent=1))

    def data_overrides(self, data: str) -> list[str]:
        if data.startswith("sim"):
            return ["data=omib_sim", f"data.case={data[3:]}", f"data.n_samples={self.n_samples}", *SIM_ENCODER]
        return ["data=mfeat", "data.batch_size=128"]

    def information(self, case: str) -> dict:
        key = f"info-sim{case}"
        res = self.cached(key)
        if res is not None:
            return res
        from mmib.objectives.omib import estimate_information
        from mmib.runs import build_datamodule

        cfg = compose_config(["method=omib", *self.data_overrides(f"sim{case}"), "seed=0"])
        dm = build_datamodule(cfg)
        tr = dm.split_batch("train")
        t0 = time.time()
        info = estimate_information([tr["x"]["x1"], tr["x"]["x2"]], steps=self.mine_steps, batch_size=self.mine_batch,
                                    lr=self.mine_lr, hidden_dim=256, seed=0, eval_batches=20)
        res = info.to_dict() | {"seconds": time.time() - t0}
        self.save(key, res)
        log(f"info sim{case}: {res}")
        return res

    def run(self, key: str, method: str, data: str, seed: int, extra: list[str] | None = None,
            probes: bool = False, trace: bool = False, refs: bool = False) -> dict:
        res = self.cached(key)
        if res is not None:
            return res
        from mmib.engine import train

        extra = list(extra or [])
        ov = [f"method={method}", *self.data_overrides(data), f"seed={seed}", f"trainer.max_epochs={self.epochs}",
              "trainer.enable_progress_bar=false", "trainer.checkpoint_every_n_epochs=1000",
              f"run_dir={self.out / 'runs'}", f"name={key}", f"method.optim.lr={self.lr}"]
        if method == "omib":
            ov.append(f"method.warmup_epochs={self.warmup}")
            if data.startswith("sim"):
                info = self.information(data[3:])
                ents = json.dumps(info["entropies"], separators=(",", ":"))
                ov.append(f"method.information={{entropies:{ents},"
                          f"mutual_informations:[[0,1,{info['mutual_informations']['0,1']!r}]]}}")
            else:
                ov += [f"method.mine.steps={int(self.mine_steps)}", f"method.mine.batch_size={int(self.mine_batch)}",
                       f"method.mine.lr={self.mine_lr}"]
        if method == "ibma" and data.startswith("sim"):
            ov.append("method.representation_dim=256")
        cfg = compose_config(ov + extra)
        t0 = time.time()
        r = train(cfg)
        m, dm = r.method, r.datamodule
        te, trb = dm.split_batch("test"), dm.split_batch("train")
        out: dict = {"key": key, "method": method, "data": data, "seed": seed, "extra": extra,
                     "train_seconds": time.time() - t0}
        with torch.no_grad():
            pred = m.predict(te)
            out["test_acc"] = float((pred.argmax(1) == te["y"]).float().mean())
            if method == "omib":
                out["beta"] = float(m.beta)
                out["M_l"], out["M_u"] = float(m.beta_lower), float(m.beta_upper)
                for mod in m.mods:
                    up = m.unimodal_predict(te, mod, seed=seed)
                    out[f"unimodal_acc_{mod}"] = float((up.argmax(1) == te["y"]).float().mean())
                if trace:
                    out["r_history"] = m.r_history
            if method == "ibma":
                out["ibma_history"] = m.ibma_history
            if probes and "latents" in te:
                out["probes"] = ridge_probes(m.fuse(trb).numpy(), {b: trb["latents"][b].numpy() for b in BLOCKS},
                                             m.fuse(te).numpy(), {b: te["latents"][b].numpy() for b in BLOCKS})
        if refs and data.startswith("sim"):
            lat = {b: dm.dataset.latents[b].numpy() for b in BLOCKS}
            y = dm.dataset.y.numpy()
            out["reference"] = reference_classifiers(lat, y, dm.indices["train"], dm.indices["test"])
        self.save(key, out)
        log(f"{key}: acc={out['test_acc']:.3f} ({out['train_seconds']:.0f}s)" +
            (f" beta={out['beta']:.3g} uni={[round(out[k], 3) for k in out if k.startswith('unimodal')]}"
             if method == "omib" else ""))
        return out

    # ------------------------------------------------------------------ parts
    def claim(self) -> None:
        for case in ("I", "III"):
            for s in self.seeds:
                self.run(f"claim-omib-sim{case}-s{s}", "omib", f"sim{case}", s, trace=True, refs=True)
                self.run(f"claim-omib_no_omf-sim{case}-s{s}", "omib", f"sim{case}", s, ["method.ablation=no_omf"])

    def ablations(self, cases: list[str]) -> None:
        for case in cases:
            for s in self.seeds:
                for ab in ("no_warmup", "concat_fusion", "no_r"):
                    self.run(f"abl-{ab}-sim{case}-s{s}", "omib", f"sim{case}", s, [f"method.ablation={ab}"])

    def rtrace(self) -> None:
        for case in ("II",):
            self.run(f"claim-omib-sim{case}-s0", "omib", f"sim{case}", 0, trace=True, refs=True)

    def sweep(self, cases: list[str], betas: list[float]) -> None:
        for case in cases:
            for b in betas:
                self.run(f"sweep-sim{case}-b{b:.0e}", "omib", f"sim{case}", 0, [f"method.beta={b}"], probes=True)
            self.run(f"sweep-sim{case}-bsampled", "omib", f"sim{case}", 0, [], probes=True)

    def reprobe(self) -> None:
        """Add the decision-direction probes (:func:`direction_probes`) to every finished sweep run."""
        for p in sorted((self.out / "results").glob("sweep-sim*.json")):
            r = json.loads(p.read_text())
            if "direction_probes" in r:
                continue
            r["direction_probes"] = direction_probes(r["key"], self.out, r["data"][3:], self.n_samples)
            p.write_text(json.dumps(r, indent=1))
            log(f"{r['key']}: direction probes {r['direction_probes']}")

    def suite(self, datas: list[str], methods: list[str]) -> None:
        for data in datas:
            for s in self.seeds:
                for meth in methods:
                    extra = []
                    name = meth
                    if meth == "ibma_club":
                        meth, extra = "ibma", ["method.bound=club"]
                    claim_key = f"claim-omib-{data}-s{s}"
                    if meth == "omib" and self.cached(claim_key) is not None:
                        continue  # the same run (same config and seed) as the claim part: reused by the report
                    self.run(f"suite-{name}-{data}-s{s}", meth, data, s, extra)


def direction_probes(key: str, out: Path, case: str, n_samples: int) -> dict[str, float]:
    """Claim-10 probes that can answer: the label is y = 1[<δ, [a0; a1; a2]> > 0], so a representation needs only the
    1-d contribution <δ_i, a_i> of each relevant block, not its hundreds of coordinates (whose average R² is ~1/d_i
    even for a perfect ξ). Test R² of a ridge from ξ to <δ_i, a_i> for a0, a1, a2, and to a fixed random unit
    projection of each superfluous block b0, b1, b2 (any linear trace ξ keeps of it)."""
    from mmib.data.synthetic.omib_sim import make_omib_sim
    from mmib.runs import load_run

    cfg, m, dm = load_run(out / "runs" / key)
    data_cfg = dict(cfg["data"])
    d = make_omib_sim(int(data_cfg.get("n_samples", n_samples)), case, seed=int(data_cfg.get("seed", 0)))
    if not np.array_equal(d.y, dm.dataset.y.numpy()):  # the hyperplane must be the run's own
        raise RuntimeError(f"{key}: could not reconstruct the data set's hyperplane δ")
    sizes = {b: d.blocks[b].shape[1] for b in BLOCKS}
    offs, o = {}, 0
    for b in ("a0", "a1", "a2"):
        offs[b] = (o, o + sizes[b])
        o += sizes[b]
    rng = np.random.default_rng(123)
    dirs = {b: d.delta[offs[b][0]:offs[b][1]] for b in ("a0", "a1", "a2")}
    dirs.update({b: rng.standard_normal(sizes[b]) for b in ("b0", "b1", "b2")})
    tr, te = dm.split_batch("train"), dm.split_batch("test")
    with torch.no_grad():
        xtr, xte = m.fuse(tr).numpy(), m.fuse(te).numpy()
    lat_tr = {b: (tr["latents"][b].numpy() @ (v / np.linalg.norm(v)))[:, None] for b, v in dirs.items()}
    lat_te = {b: (te["latents"][b].numpy() @ (v / np.linalg.norm(v)))[:, None] for b, v in dirs.items()}
    return ridge_probes(xtr, lat_tr, xte, lat_te)


def ridge_probes(xtr, lat_tr, xte, lat_te, alpha: float = 1.0) -> dict[str, float]:
    """Test R² of a ridge probe from ξ to each ground-truth block (spec omib §9 claim 10)."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(xtr)
    a, b = sc.transform(xtr), sc.transform(xte)
    out = {}
    for k in lat_tr:
        reg = Ridge(alpha=alpha).fit(a, lat_tr[k])
        out[k] = float(r2_score(lat_te[k], reg.predict(b), multioutput="uniform_average"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("parts", nargs="+", choices=["info", "claim", "ablations", "rtrace", "sweep", "reprobe", "suite", "report"])
    ap.add_argument("--out", type=Path, default=Path("runs/ib_fusion"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--n-samples", type=int, default=10000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--mine-steps", type=int, default=1000)
    ap.add_argument("--mine-lr", type=float, default=3e-4)
    ap.add_argument("--mine-batch", type=int, default=128)
    ap.add_argument("--sweep-cases", nargs="+", default=["I"])
    ap.add_argument("--ablation-cases", nargs="+", default=["I", "III"])
    ap.add_argument("--betas", type=float, nargs="+", default=[1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10])
    ap.add_argument("--suite-data", nargs="+", default=["simI", "simII", "simIII", "mfeat"])
    ap.add_argument("--suite-methods", nargs="+", default=["omib", "ibma", *BASELINES])
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    st = Study(a.out, a.epochs, a.warmup, a.lr, a.n_samples, a.seeds, a.mine_steps, a.mine_batch, a.mine_lr)
    for p in a.parts:
        if p == "info":
            for c in ("I", "II", "III"):
                st.information(c)
        elif p == "claim":
            st.claim()
        elif p == "ablations":
            st.ablations(a.ablation_cases)
        elif p == "rtrace":
            st.rtrace()
        elif p == "sweep":
            st.sweep(a.sweep_cases, a.betas)
        elif p == "reprobe":
            st.reprobe()
        elif p == "suite":
            st.suite(a.suite_data, a.suite_methods)
        elif p == "report":
            from ib_fusion_report import write_report

            write_report(a.out, Path("docs/results"), vars(a))


if __name__ == "__main__":
    main()
