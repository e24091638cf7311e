"""Decomposition-study analyses as evaluation protocols (registered on import; the ``decomposition`` suite lists this
module under ``imports:``).

* ``random_init_probe`` (CoMM's control, spec D.3.8): the same probes as ``probe`` on a *randomly initialised* copy
  of the run's method — the same class, config and encoder config, its weights drawn with ``torch.manual_seed`` of
  the run's seed (``init_seed`` overrides it) — on the same splits (with the suite entry's ``eval_data``, the
  evaluation data). A trained representation must beat this row before "it decodes X" means anything: a random
  fusion network already mixes the modalities non-linearly. Rows ``random_init/<representation>/<probe>``.
  ``methods``: the registered method names it runs for (default: all); for other methods it adds a note and no rows,
  so a suite can run it beside every method without paying for controls it does not need.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmib.bench.extensions import register_protocol

RANDOM_INIT_KEYS = ("methods", "init_seed", "probes", "representations", "modalities", "probe_options")


@register_protocol("random_init_probe", replace=True)
def random_init_probe(ctx, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    import torch

    from mmib.errors import MMIBError, UnknownNameError
    from mmib.eval.protocols import EvalContext, run_probe

    opts = dict(options or {})
    for k in opts:
        if k not in RANDOM_INIT_KEYS:
            raise UnknownNameError("option of protocol 'random_init_probe'", str(k), list(RANDOM_INIT_KEYS))
    methods = opts.pop("methods", None)
    if methods is not None and (not isinstance(methods, (list, tuple)) or not all(isinstance(m, str) for m in methods)):
        raise MMIBError(f"random_init_probe: methods must be a list of method names, got {methods!r}")
    init_seed = opts.pop("init_seed", None)
    seed = int(ctx.seed if init_seed is None else init_seed)
    record_opts = {"methods": methods, "init_seed": seed, **opts}
    trained = ctx.method
    if methods is not None and trained.name not in methods:
        return {"protocol": "random_init_probe", "options": record_opts, "rows": [], "plots": {},
                "notes": [f"skipped: method '{trained.name}' is not in {list(methods)}"]}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = type(trained)(trained.spec, trained.cfg, trained.encoder_cfg)
    fresh.to(trained.device).eval()
    sub = EvalContext(method=fresh, dm=ctx.dm, seed=ctx.seed)
    res = run_probe(sub, {**opts, "baseline_raw": False, "own_predictions": False})
    rows = []
    for r in res["rows"]:
        rows.append({**r, "id": "random_init/" + r["id"].split("/", 1)[1], "source": "random_init",
                     "label": f"{trained.name} at random initialisation (seed {seed}) {r['representation']}"})
    return {"protocol": "random_init_probe", "options": record_opts, "rows": rows, "plots": {},
            "notes": [*res["notes"], f"{trained.name} rebuilt with its config, weights from torch.manual_seed({seed}); "
                                     "no training"],
            "primary_metric": res.get("primary_metric"), "modalities": res.get("modalities")}
