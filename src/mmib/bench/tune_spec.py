"""The ``tune:`` block of a suite (:class:`TuneSpec`, read and checked by :func:`parse_tune`); the tuning itself and
the block's documentation are in :mod:`mmib.bench.tune`.

Kept apart from the tuning so that reading a suite (:mod:`mmib.bench.suite`) does not import the module that runs
its trials (which imports the suite's run overrides): no import cycle between them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mmib.errors import MMIBError, UnknownNameError

TUNE_KEYS = ("data", "seed", "n_trials", "sampler", "pruner", "metric", "direction", "trainer", "space", "inherit")
SAMPLERS = ("tpe", "random", "qmc", "cmaes")
PRUNERS = ("none", "median", "percentile", "successive_halving", "hyperband")
PARAM_KEYS = ("low", "high", "log", "step", "int", "choices")
PROBE_METRIC_KEYS = ("probe", "representation", "metric", "modalities", "probe_options")
METRIC_KINDS = ("logged", "probe", "oom")


@dataclass
class TuneSpec:
    data: str
    seed: int
    n_trials: int
    space: dict[str, dict[str, dict[str, Any]]]
    sampler: dict[str, Any] = field(default_factory=lambda: {"name": "tpe", "seed": 0})
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "none"})
    metric: dict[str, Any] = field(default_factory=lambda: {"logged": "val/loss"})
    direction: str = "minimize"
    trainer: dict[str, Any] = field(default_factory=dict)
    #: untuned variant → the tuned variant whose chosen values it takes (ablations inherit their parent's values)
    inherit: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def shared(self) -> dict[str, Any]:
        """What every variant's study shares (the budget): all but the search spaces."""
        d = self.to_dict()
        d.pop("space")
        d.pop("inherit")
        return d

    def pending(self, tuned: Mapping[str, Any]) -> set[str]:
        """The variants that wait for a study: tuned variants without a finished one, and their inheritors."""
        missing = set(self.space) - set(tuned)
        return missing | {v for v, parent in self.inherit.items() if parent in missing}


def _param(spec: Any, where: str) -> dict[str, Any]:
    if isinstance(spec, (list, tuple)):
        spec = {"choices": list(spec)}
    if not isinstance(spec, Mapping):
        raise MMIBError(f"{where}: expected {{low, high[, log, step, int]}}, {{choices: [...]}} or a list of choices, "
                        f"got {spec!r}")
    p = {str(k): v for k, v in spec.items()}
    for k in p:
        if k not in PARAM_KEYS:
            raise UnknownNameError(f"key of {where}", k, list(PARAM_KEYS))
    if "choices" in p:
        if set(p) - {"choices"} or not isinstance(p["choices"], (list, tuple)) or not p["choices"]:
            raise MMIBError(f"{where}: 'choices' is a non-empty list and stands alone")
        return {"choices": list(p["choices"])}
    if "low" not in p or "high" not in p:
        raise MMIBError(f"{where}: a range needs 'low' and 'high' (or give 'choices')")
    lo, hi = p["low"], p["high"]
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (lo, hi)) or not lo < hi:
        raise MMIBError(f"{where}: expected numbers low < high, got low={lo!r}, high={hi!r}")
    if p.get("log") and lo <= 0:
        raise MMIBError(f"{where}: a log range needs low > 0, got {lo}")
    if p.get("log") and p.get("step") is not None:
        raise MMIBError(f"{where}: 'log' and 'step' exclude each other (Optuna)")
    out = {"low": lo, "high": hi, "log": bool(p.get("log", False)), "int": bool(p.get("int", False))}
    if p.get("step") is not None:
        out["step"] = p["step"]
    return out


def parse_tune(raw: Any, suite_name: str, variants: list[str], data: list[str], seeds: list[int]) -> TuneSpec | None:
    """Validate a suite's ``tune:`` block (errors name the key and what was expected)."""
    from mmib.eval.metrics import higher_is_better

    if raw is None:
        return None
    where = f"suite '{suite_name}' tune"
    if not isinstance(raw, Mapping):
        raise MMIBError(f"{where}: expected a mapping")
    for k in raw:
        if k not in TUNE_KEYS:
            raise UnknownNameError(f"key of {where}", str(k), list(TUNE_KEYS))
    d = str(raw.get("data") or data[0])
    if d not in data:
        raise UnknownNameError(f"data entry of {where}", d, data)
    seed = raw.get("seed", seeds[0])
    n = raw.get("n_trials")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise MMIBError(f"{where}.seed: expected an integer, got {seed!r}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise MMIBError(f"{where}.n_trials: expected an integer >= 1 (the same budget for every variant), got {n!r}")
    sampler = dict(raw.get("sampler") or {"name": "tpe"})
    sampler.setdefault("name", "tpe")
    sampler.setdefault("seed", 0)
    if sampler["name"] not in SAMPLERS:
        raise UnknownNameError(f"sampler of {where}", str(sampler["name"]), list(SAMPLERS))
    pruner = dict(raw.get("pruner") or {"name": "none"})
    pruner.setdefault("name", "none")
    if pruner["name"] not in PRUNERS:
        raise UnknownNameError(f"pruner of {where}", str(pruner["name"]), list(PRUNERS))
    metric = dict(raw.get("metric") or {"logged": "val/loss"})
    if sum(k in metric for k in METRIC_KINDS) != 1:
        raise MMIBError(f"{where}.metric: give either {{logged: val/<name>}} (a validation metric the run logs), "
                        "{probe: linear, metric: accuracy} (a probe scored on the val split) or {oom: accuracy} "
                        "(the oom protocol's metric of the trained method on the val split)")
    if "logged" in metric:
        if set(metric) != {"logged"}:
            raise MMIBError(f"{where}.metric: a logged metric takes no other key, got {sorted(metric)}")
        if not str(metric["logged"]).startswith("val"):
            raise MMIBError(f"{where}.metric.logged: selection is on the validation split only; give a val/... "
                            f"metric, got {metric['logged']!r}")
        name = str(metric["logged"]).rsplit("/", 1)[-1]
    elif "oom" in metric:
        if set(metric) != {"oom"}:
            raise MMIBError(f"{where}.metric: an oom metric takes no other key, got {sorted(metric)}")
        if not isinstance(metric["oom"], str) or not metric["oom"]:
            raise MMIBError(f"{where}.metric.oom: expected the name of an oom protocol metric (accuracy, "
                            f"acc_best_perm, R@1/oom->im, ...), got {metric['oom']!r}")
        name = metric["oom"].rsplit("/", 1)[0]
    else:
        for k in metric:
            if k not in PROBE_METRIC_KEYS:
                raise UnknownNameError(f"key of {where}.metric", str(k), list(PROBE_METRIC_KEYS))
        metric.setdefault("representation", "concat")
        metric.setdefault("metric", "accuracy")
        name = str(metric["metric"])
    direction = str(raw.get("direction") or ("maximize" if higher_is_better(name) else "minimize"))
    if direction not in ("minimize", "maximize"):
        raise MMIBError(f"{where}.direction: minimize or maximize, got {direction!r}")
    space_raw = raw.get("space")
    if not isinstance(space_raw, Mapping) or not space_raw:
        raise MMIBError(f"{where}.space: expected a mapping of method variant → {{dotted.config.key: range}}")
    space: dict[str, dict[str, dict[str, Any]]] = {}
    for v, params in space_raw.items():
        if v not in variants:
            raise UnknownNameError(f"method variant in {where}.space", str(v), variants)
        if not isinstance(params, Mapping) or not params:
            raise MMIBError(f"{where}.space.{v}: expected a mapping of dotted config keys to ranges")
        space[str(v)] = {str(k): _param(p, f"{where}.space.{v}.{k}") for k, p in params.items()}
    trainer = raw.get("trainer") or {}
    if not isinstance(trainer, Mapping):
        raise MMIBError(f"{where}.trainer: expected a mapping of trainer keys")
    inherit_raw = raw.get("inherit") or {}
    if not isinstance(inherit_raw, Mapping):
        raise MMIBError(f"{where}.inherit: expected a mapping of untuned variant → tuned variant")
    inherit: dict[str, str] = {}
    for v, parent in inherit_raw.items():
        if v not in variants:
            raise UnknownNameError(f"method variant in {where}.inherit", str(v), variants)
        if v in space:
            raise MMIBError(f"{where}.inherit.{v}: the variant is tuned itself (it is under space)")
        if parent not in space:
            raise UnknownNameError(f"tuned variant in {where}.inherit.{v}", str(parent), list(space))
        inherit[str(v)] = str(parent)
    return TuneSpec(data=d, seed=int(seed), n_trials=n, space=space, sampler=sampler, pruner=pruner, metric=metric,
                    direction=direction, trainer=dict(trainer), inherit=inherit)


# ------------------------------------------------------------------------------------------------- optuna glue
