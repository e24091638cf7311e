"""The Hydra overrides of one suite run and the fingerprint of its configuration.

Used by the plan (:mod:`mmib.bench.plan`: which runs are done) and by tuning (:mod:`mmib.bench.tune`: a study's
fingerprint); it imports neither of them, so neither imports the other through it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmib.errors import MMIBError

if TYPE_CHECKING:  # types only: suite.py imports tune.py, which imports this module
    from mmib.bench.suite import DataEntry, MethodVariant, Suite

#: config keys that do not change what a run computes (left out of the fingerprint)
_NOT_FINGERPRINTED = ("run_dir", "name", "resume", "overwrite")

#: options added after runs had finished, at the value that reproduces what the code computed before they existed:
#: ``(method name, key in method, value)``. At that value the key is left out of the fingerprint, so adding an option
#: does not make every finished run of the method stale; any other value enters it. Add an entry only when the
#: value is the former behaviour exactly (the same numbers, the same random draws) and say why here.
#: ``rus``: ``synergy_partners`` and ``synergy_bank`` act only with ``synergy: interaction`` (new), ``synergy_source:
#: fusion`` is the one path of before (issue 20, 2026-12-07); ``s_grad: all`` computes L_S exactly as before (the
#: same graph, the same augmentation draws; ``fusion`` detaches its inputs, issue 20, 2026-12-08).
#: Alignment methods: ``head_centre: none`` feeds the head outputs to the objective as before the option existed
#: (Symile's default became ``batch_offset``, issue 19, 2026-12-08: its runs without the key are runs of ``none``).
NEUTRAL_OPTIONS: tuple[tuple[str, str, Any], ...] = (
    ("rus", "synergy_partners", 4),
    ("rus", "synergy_bank", 64),
    ("rus", "synergy_source", "fusion"),
    ("rus", "s_grad", "all"),
    ("rus", "decoded_centre", "running"),
    ("rus", "decoded_head", "mlp"),
    *((name, "head_centre", "none") for name in ("clip", "clip_ib", "symile", "gram", "triangle", "ova_ib")),
)
#: the same for options of the data config, whatever the data set: ``(key in data, value)``. ``train_label_noise: 0.0``
#: leaves every label as given, the only behaviour before the option existed (issue 19, 2026-12-07).
NEUTRAL_DATA_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("train_label_noise", 0.0),
)


def _drop_neutral_options(cfg: dict[str, Any]) -> dict[str, Any]:
    data = cfg.get("data")
    if isinstance(data, dict):
        drop = {k for k, v in NEUTRAL_DATA_OPTIONS if k in data and _same_value(data[k], v)}
        if drop:
            cfg = {**cfg, "data": {k: v for k, v in data.items() if k not in drop}}
    method = cfg.get("method")
    if not isinstance(method, dict):
        return cfg
    drop = {k for name, k, v in NEUTRAL_OPTIONS if method.get("name") == name and k in method and method[k] == v
            and type(method[k]) is type(v)}
    if not drop:
        return cfg
    return {**cfg, "method": {k: v for k, v in method.items() if k not in drop}}


def _same_value(a: Any, b: Any) -> bool:
    """``a == b`` of one type, except that an int equals the float of its value (``0`` is ``0.0``), not a bool."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return type(a) is type(b) and a == b


def run_overrides(suite: Suite, variant: MethodVariant, data: DataEntry, seed: int, out_dir: Path,
                  progress: bool = True) -> list[str]:
    """Hydra overrides of one run (suite overrides < trainer < data entry < method variant)."""
    from mmib.config import dotted_overrides

    opts: dict[str, Any] = {}
    opts.update(suite.overrides)
    opts.update({f"trainer.{k}": v for k, v in suite.trainer.items()})
    opts.update({f"data.{k}": v for k, v in data.options.items()})
    opts.update(data.config)
    opts.update({f"method.{k}": v for k, v in variant.overrides.items()})
    opts.update(variant.config)
    if not progress:
        opts["trainer.enable_progress_bar"] = False
    opts.update({"seed": seed, "run_dir": str(out_dir), "name": f"{variant.name}-{data.name}-s{seed}"})
    fixed = [o for o in opts if o.lstrip("+") in ("method", "data")]
    if fixed:
        raise MMIBError(f"suite '{suite.name}': choose the method and data with 'method:'/'data:', not {fixed}")
    return [f"method={variant.method}", f"data={data.data}", *dotted_overrides(opts)]


def _drop_cache_keys(d: Any) -> Any:
    """The config without its ``cache`` / ``cache_dir`` switches (at any depth): where intermediate results are kept
    does not change a run's results, so it does not make a finished run stale. Likewise ``gather_distributed:
    false``: not gathering is what every objective did before the switch existed (a run finished then has the same
    results), so the default does not enter the fingerprint; ``true`` does."""
    if isinstance(d, dict):
        out = {}
        for k, v in d.items():
            if k in ("cache", "cache_dir") or (k == "gather_distributed" and v is False):
                continue
            kept = _drop_cache_keys(v)
            if isinstance(v, dict) and v and not kept:  # a block that held only such switches: as if absent
                continue
            out[k] = kept
        return out
    if isinstance(d, list):
        return [_drop_cache_keys(v) for v in d]
    return d


def config_fingerprint(cfg: dict[str, Any], protocols: Any) -> str:
    c = {k: v for k, v in cfg.items() if k not in _NOT_FINGERPRINTED}
    c["trainer"] = {k: v for k, v in (c.get("trainer") or {}).items() if k != "enable_progress_bar"}
    c = _drop_neutral_options(_drop_cache_keys(c))
    text = json.dumps({"config": c, "protocols": protocols}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
