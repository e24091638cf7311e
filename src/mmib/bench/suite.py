"""Bench suites: methods × data sets × seeds × protocols, in one YAML file.

A packaged suite runs by name (``mmib bench demo`` → ``mmib/bench/suites/demo.yaml``), any other by path. Format::

    name: alignment                      # default: the file name
    description: pairwise CLIP vs OVA-IB on the 6-view digits
    seeds: [0, 1, 2]
    methods:                             # method variants (one leaderboard row each)
      - clip                             #   a registered method with its default config
      - name: ova_ib-beta0               #   a named variant: folder and leaderboard name
        method: ova_ib                   #   the registered method (default: name)
        overrides: {objective.beta: 0}   #   keys under `method.` (dotted)
        config: {trainer.max_epochs: 50} #   any other config key for this variant (dotted, from the root)
        only_data: [mfeat-3v]            #   optional: the data entries this variant runs on (default: all)
        seeds: [0, 1, 2, 3, 4]           #   optional: this variant's seeds (default: the suite's), e.g. a chaotic one
    data:
      - mfeat
      - name: mfeat-3v
        data: mfeat                      #   the data config (default: name)
        options: {views: [0, 2, 5]}      #   keys under `data.` (data set options and data-module settings)
        config: {}                       #   any other config key for this data set
    trainer: {max_epochs: 30}            # keys under `trainer.` for every run
    overrides: {encoder.vector.hidden: [128]}   # any other config key for every run (dotted)
    protocols:                           # see mmib.eval.protocols.parse_protocols
      - probe: {probes: [linear, mlp]}
      - subsets
      - {protocol: retrieval, directions: ["fou+fac->kar"]}
      - {protocol: embedding_share, only_data: [mfeat-3v]}   # a protocol for some data entries only (`only_data`)
    leaderboard: {protocol: probe, row: method/concat/linear, metric: accuracy}   # optional
    callbacks: ["my_pkg.traces:EpochTrace"]  # Lightning callbacks built for every run (also per method variant)
    imports: [my_pkg.analyses]           # modules imported first (they register study protocols: register_protocol)
    notes: chaotic across machines (one seed moved by 8 points); 5 seeds   # shown in the report
    # per method variant: `sweep: {objective.beta: [0, 0.01, 0.1]}` → variants <name>-beta-0, <name>-beta-0.01, ...
    # per data entry: `eval_data: {options: {biased: false}}` → the protocols evaluate on that data instead
    tune:                                # optional: tune some variants with an equal budget first (mmib.bench.tune)
      data: mfeat-3v
      n_trials: 20
      sampler: {name: tpe, seed: 0}
      metric: {probe: linear, metric: accuracy}    # scored on the val split
      space: {clip: {method.objective.temperature: {low: 0.01, high: 1.0, log: true}}}

Precedence of config keys, last wins: suite ``overrides`` < ``trainer`` < data entry < method variant. A key that is
not in the composed config needs Hydra's ``+`` prefix (``+method.new_key: 1``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from mmib.errors import MMIBError, UnknownNameError

SUITE_KEYS = ("name", "description", "seeds", "methods", "data", "trainer", "overrides", "protocols", "leaderboard",
              "tune", "callbacks", "imports", "notes")
METHOD_KEYS = ("name", "method", "overrides", "config", "description", "only_data", "callbacks", "sweep", "seeds")
DATA_KEYS = ("name", "data", "options", "config", "description", "eval_data")
LEADERBOARD_KEYS = ("protocol", "row", "metric")


@dataclass
class MethodVariant:
    name: str
    method: str
    overrides: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    #: data entry names this variant runs on (None: every data entry), e.g. TRIANGLE only where M = 3
    only_data: list[str] | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    #: this variant's seeds (None: the suite's), e.g. 5 seeds for a chaotic method in a 3-seed suite. A run's seed is
    #: one of its overrides, so giving a variant its own seeds changes no run's fingerprint: the runs of the seeds it
    #: shares with the suite stay done, the others are added (or dropped)
    seeds: list[int] | None = None

    def runs_on(self, data_name: str) -> bool:
        return self.only_data is None or data_name in self.only_data


@dataclass
class DataEntry:
    name: str
    data: str
    options: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    #: evaluate on the same data config with these options / config keys instead (mmib.bench.extensions)
    eval_data: dict[str, Any] | None = None


@dataclass
class Suite:
    name: str
    methods: list[MethodVariant]
    data: list[DataEntry]
    seeds: list[int] = field(default_factory=lambda: [0])
    protocols: list[Any] = field(default_factory=list)
    trainer: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    leaderboard: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str | None = None
    tune: Any = None  # mmib.bench.tune_spec.TuneSpec
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    #: free text the report shows under the suite's description (e.g. "chaotic across machines: 5 seeds")
    notes: str = ""
    #: per entry of ``protocols``: the data entries it runs on (its ``only_data``), None for all
    protocol_only_data: list[list[str] | None] = field(default_factory=list)

    def protocols_for(self, data_name: str) -> list[Any] | None:
        """The protocols a run on data entry ``data_name`` evaluates (and is fingerprinted with): those without
        ``only_data`` and those whose ``only_data`` names it. None: the default protocols."""
        if self.protocols is None:
            return None
        scopes = self.protocol_only_data or [None] * len(self.protocols)
        return [p for p, only in zip(self.protocols, scopes) if only is None or data_name in only]

    def seeds_of(self, variant: MethodVariant) -> list[int]:
        """The seeds a variant runs: its own ``seeds``, else the suite's."""
        return list(variant.seeds) if variant.seeds is not None else list(self.seeds)

    def all_seeds(self) -> list[int]:
        """Every seed some variant of the suite runs, sorted."""
        return sorted({s for v in self.methods for s in self.seeds_of(v)})

    def to_dict(self) -> dict[str, Any]:
        """The suite as plain data (the results file's ``suite``); a variant without seeds of its own has no ``seeds``
        key, so the results files of suites that do not use it stay as they were."""
        from dataclasses import asdict

        d = asdict(self)
        for v in d["methods"]:
            if v.get("seeds") is None:
                v.pop("seeds", None)
        return d


def packaged_suites() -> list[str]:
    root = resources.files("mmib.bench") / "suites"
    return sorted(p.name[: -len(".yaml")] for p in root.iterdir() if p.name.endswith(".yaml"))


def _suite_text(name_or_path: str | os.PathLike) -> tuple[str, str]:
    p = Path(name_or_path)
    if p.is_file():
        return p.read_text(), str(p)
    if p.suffix in (".yaml", ".yml") or os.sep in str(name_or_path):
        raise MMIBError(f"suite file '{name_or_path}' does not exist")
    res = resources.files("mmib.bench") / "suites" / f"{name_or_path}.yaml"
    if not res.is_file():
        raise UnknownNameError("bench suite", str(name_or_path), packaged_suites())
    return res.read_text(), f"mmib/bench/suites/{name_or_path}.yaml"


def _check_keys(d: Mapping[str, Any], valid: Sequence[str], where: str) -> None:
    for k in d:
        if k not in valid:
            raise UnknownNameError(f"key of {where}", str(k), list(valid))


def _mapping(v: Any, where: str) -> dict[str, Any]:
    if v is None:
        return {}
    if isinstance(v, Mapping):
        return {str(k): x for k, x in v.items()}
    if isinstance(v, (list, tuple)):  # a list of "key=value" strings
        out = {}
        for item in v:
            if not isinstance(item, str) or "=" not in item:
                raise MMIBError(f"{where}: expected a mapping or a list of 'key=value' strings, got {item!r}")
            k, _, val = item.partition("=")
            import yaml

            out[k.strip()] = yaml.safe_load(val)
        return out
    raise MMIBError(f"{where}: expected a mapping, got {type(v).__name__}")


def parse_suite(raw: Mapping[str, Any], default_name: str = "suite", source: str | None = None) -> Suite:
    """Validate a suite mapping (as read from YAML); errors name the key and what was expected."""
    from mmib.config import group_options
    from mmib.eval.protocols import parse_protocols
    from mmib.methods.registry import get_method_class

    if not isinstance(raw, Mapping):
        raise MMIBError(f"suite {source or default_name}: expected a mapping at the top level")
    _check_keys(raw, SUITE_KEYS, "suite")
    name = str(raw.get("name") or default_name)
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise MMIBError(f"suite name '{name}': use letters, digits, '-', '_' and '.' only (it names a folder)")
    from mmib.bench.extensions import expand_sweep, import_modules, parse_callbacks, parse_eval_data

    imports = import_modules(raw.get("imports"), f"suite '{name}' imports")  # before the protocols are validated
    methods = []
    for i, m0 in enumerate(raw.get("methods") or []):
        if isinstance(m0, str):
            m0 = {"name": m0}
        if not isinstance(m0, Mapping) or "name" not in m0 and "method" not in m0:
            raise MMIBError(f"suite '{name}': methods[{i}] must be a method name or a mapping with 'name'/'method'")
        _check_keys(m0, METHOD_KEYS, f"suite '{name}' methods[{i}]")
        for m in expand_sweep(m0, f"suite '{name}' methods[{i}]"):
            v = MethodVariant(name=str(m.get("name") or m["method"]), method=str(m.get("method") or m["name"]),
                              overrides=_mapping(m.get("overrides"), f"methods[{i}].overrides"),
                              config=_mapping(m.get("config"), f"methods[{i}].config"),
                              description=str(m.get("description") or ""),
                              only_data=_name_list(m.get("only_data"), f"suite '{name}' methods[{i}].only_data"),
                              callbacks=parse_callbacks(m.get("callbacks"), f"suite '{name}' methods[{i}].callbacks"))
            if m.get("seeds") is not None:
                v.seeds = seed_list(m["seeds"], f"suite '{name}' variant '{v.name}' (methods[{i}]): seeds")
            get_method_class(v.method)
            methods.append(v)
    if not methods:
        raise MMIBError(f"suite '{name}': 'methods' is empty; list at least one method (e.g. methods: [clip])")
    data = []
    for i, d in enumerate(raw.get("data") or []):
        if isinstance(d, str):
            d = {"name": d}
        if not isinstance(d, Mapping) or "name" not in d and "data" not in d:
            raise MMIBError(f"suite '{name}': data[{i}] must be a data config name or a mapping with 'name'/'data'")
        _check_keys(d, DATA_KEYS, f"suite '{name}' data[{i}]")
        data.append(DataEntry(name=str(d.get("name") or d["data"]), data=str(d.get("data") or d["name"]),
                              options=_mapping(d.get("options"), f"data[{i}].options"),
                              config=_mapping(d.get("config"), f"data[{i}].config"),
                              description=str(d.get("description") or ""),
                              eval_data=parse_eval_data(d.get("eval_data"), f"suite '{name}' data[{i}].eval_data")))
        if data[-1].data not in group_options("data"):
            raise UnknownNameError(f"data config of suite '{name}' data[{i}] (src/mmib/conf/data/)", data[-1].data,
                                   group_options("data"))
    if not data:
        raise MMIBError(f"suite '{name}': 'data' is empty; list at least one data set (e.g. data: [mfeat])")
    data_names = [d.name for d in data]
    for v in methods:
        for dn in v.only_data or ():
            if dn not in data_names:
                raise UnknownNameError(f"data entry in only_data of suite '{name}' variant '{v.name}'", dn, data_names)
    for what, items in (("method variant", methods), ("data set", data)):
        names = [x.name for x in items]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise MMIBError(f"suite '{name}': {what} name(s) {sorted(dup)} used twice; give each a distinct 'name'")
        for n in names:
            if not n.replace("-", "").replace("_", "").replace(".", "").isalnum():
                raise MMIBError(f"suite '{name}': {what} name '{n}' may hold letters, digits, '-', '_', '.' only")
    seeds = seed_list(raw.get("seeds", [0]), f"suite '{name}': seeds")
    protocols, protocol_only_data = _protocol_scopes(raw.get("protocols"), name, data_names)
    parse_protocols(protocols)  # validate now, not after hours of training
    lb = _mapping(raw.get("leaderboard"), "leaderboard")
    _check_keys(lb, LEADERBOARD_KEYS, f"suite '{name}' leaderboard")
    from mmib.bench.tune_spec import parse_tune

    tune = parse_tune(raw.get("tune"), name, [v.name for v in methods], data_names, seeds)
    return Suite(name=name, methods=methods, data=data, seeds=seeds, tune=tune,
                 callbacks=parse_callbacks(raw.get("callbacks"), f"suite '{name}' callbacks"), imports=imports,
                 notes=str(raw.get("notes") or ""),
                 protocols=list(protocols) if protocols is not None else None, protocol_only_data=protocol_only_data,
                 trainer=_mapping(raw.get("trainer"), "trainer"), overrides=_mapping(raw.get("overrides"), "overrides"),
                 leaderboard=lb, description=str(raw.get("description") or ""), source=source)


def _protocol_scopes(spec: Any, name: str, data_names: Sequence[str]) -> tuple[Any, list[list[str] | None]]:
    """The suite's protocol entries without their ``only_data`` key (a suite key, not a protocol option; only in the
    mapping forms ``{kind: {..., only_data: [...]}}`` and ``{protocol: kind, ..., only_data: [...]}``), and each
    entry's ``only_data`` (None: every data entry)."""
    if not isinstance(spec, (list, tuple)):
        return spec, []
    out, scopes = [], []
    for i, entry in enumerate(spec):
        only = None
        if isinstance(entry, Mapping) and "protocol" in entry and "only_data" in entry:
            entry = dict(entry)
            only = entry.pop("only_data")
        elif isinstance(entry, Mapping) and len(entry) == 1:
            kind, opts = next(iter(entry.items()))
            if isinstance(opts, Mapping) and "only_data" in opts:
                opts = dict(opts)
                only = opts.pop("only_data")
                entry = {kind: opts}
        if only is not None:
            only = _name_list(only, f"suite '{name}' protocols[{i}].only_data")
            for dn in only or ():
                if dn not in data_names:
                    raise UnknownNameError(f"data entry in only_data of suite '{name}' protocols[{i}]", dn,
                                           list(data_names))
        out.append(entry)
        scopes.append(only)
    return out, scopes


def seed_list(value: Any, where: str) -> list[int]:
    """A ``seeds`` value (an integer or a non-empty list of distinct integers) as a list; errors name ``where``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if (not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in value)):
        raise MMIBError(f"{where} must be a non-empty list of integers, got {value!r}")
    if len(set(value)) < len(value):
        raise MMIBError(f"{where} must list each seed once, got {value!r}")
    return [int(s) for s in value]


def _name_list(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(x, str) for x in value):
        raise MMIBError(f"{where}: expected a non-empty list of data entry names, got {value!r}")
    return list(value)


def load_suite(suite: str | os.PathLike | Mapping[str, Any] | Suite) -> Suite:
    """A suite from a packaged name, a YAML path, a mapping, or a :class:`Suite` (returned as is)."""
    if isinstance(suite, Suite):
        return suite
    if isinstance(suite, Mapping):
        return parse_suite(suite)
    import yaml

    text, source = _suite_text(suite)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise MMIBError(f"suite {source}: invalid YAML ({str(e).splitlines()[0]})") from None
    return parse_suite(raw or {}, default_name=Path(source).stem, source=source)
