"""The suite's kept results file (``docs/results/<suite>/results.json``): small enough for the repository, complete
enough to continue the suite elsewhere and to regenerate every table.

:func:`pack_results` turns the suite's results (as :func:`mmib.bench.archive.collect_suite` returns them) into the
kept form; :func:`unpack_results` gives the same structure back. In the kept form

* ``rows`` holds each protocol row's header once per data entry — data entry → protocol → row id → ``{"label",
  "source", "chance": {metric: value}}`` — shared by the variants (a label that starts with the method's name stores
  it as ``{method}``); a variant whose header differs stores the differing fields in its own row;
* ``aggregate`` is nested — variant → data entry → protocol → ``{"kind", "rows": {row id: {metric:
  [per-seed values]}}}`` (and ``"~head"``: the header fields that differ from the shared ones) — with the seeds of each (variant, data entry) once in ``seeds`` (a metric measured on
  other seeds is stored as ``{"values", "seeds"}``); mean, std (``ddof=1``) and n are recomputed from the values;
* ``records`` keeps, per finished run (by folder name), its identity and fingerprint (``bench``), completeness,
  timings and code version; its final metrics are the per-seed values of the aggregate (not stored twice);
* ``runs`` (every planned run, finished or not) leaves out what the run's record holds (identity, fingerprint,
  timings);
* a metric equal to another of its row on every seed is stored as ``"=<metric>"``;
* of a built-in protocol whose tables show only some metrics (e.g. ``info_probe``, ``subsets``: the primary metric;
  see :func:`mmib.bench.report.table_metrics`), only those and the leaderboard's metric are kept; the other metrics
  stay in each run's full record (the ``--archive`` directory);
* numbers are rounded to 7 significant digits (float32 precision, far below what any table shows);
* one row header, aggregate row or run record per line, so that a new run changes a few lines in a diff.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmib.bench.aggregate import mean_std

PACKED = "packed-2"
PACKED_V1 = "packed-1"  # read for files written before packed-2 (per-variant row headers, [mean, std, n, values])
METHOD = "{method}"  # a shared label's placeholder for the variant's method name
HEAD = "~head"  # in a variant's row, the header fields that differ from the shared ones
_RUN_FROM_RECORD = ("variant", "method", "data", "seed", "fingerprint", "timings", "learned_temperature")


def _run_from_record(rec: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a ``runs`` entry that its kept record already holds."""
    b = rec.get("bench") or {}
    return {k: (b.get(k) if k in ("variant", "method", "data", "seed", "fingerprint") else rec.get(k))
            for k in _RUN_FROM_RECORD}


def _r(x: Any) -> Any:
    if isinstance(x, float) and math.isfinite(x):
        return float(f"{x:.7g}")
    return x


def _template(label: str, method: str | None) -> str:
    return METHOD + label[len(method):] if method and label.startswith(method + " ") else label


def _fill(label: str, method: str | None) -> str:
    return (method or "") + label[len(METHOD):] if label.startswith(METHOD) else label


def pack_results(results: Mapping[str, Any]) -> dict[str, Any]:
    """The kept form of a suite's results (see the module docstring)."""
    out = {k: v for k, v in results.items() if k not in ("aggregate", "records", "out_dir")}
    out["format"] = PACKED
    seeds: dict[str, dict[str, list[int]]] = {}
    for rec in (results.get("records") or {}).values():
        b = rec["bench"]
        seeds.setdefault(b["variant"], {}).setdefault(b["data"], []).append(int(b["seed"]))
    for v in seeds.values():
        for d in v:
            v[d] = sorted(v[d])
    headers: dict[str, Any] = {}  # data → protocol → row id → the row's header, shared by the variants
    agg: dict[str, Any] = {}
    kept_metrics = _kept_metrics(results)
    for a in results.get("aggregate") or []:
        if a["metric"] not in kept_metrics.get((a["protocol"], a["data"]), ()):
            continue
        p = agg.setdefault(a["variant"], {}).setdefault(a["data"], {}).setdefault(
            a["protocol"], {"kind": a["kind"], "rows": {}})
        row = p["rows"].setdefault(a["row"], {"head": {"label": _template(a.get("label", ""), a.get("method")),
                                                       "source": a.get("source", ""), "chance": {}},
                                              "metrics": {}})
        if a.get("chance") is not None:
            row["head"]["chance"][a["metric"]] = _r(a["chance"])
        values = [_r(x) for x in a["values"]]
        item: Any = values
        if list(a["seeds"]) != seeds.get(a["variant"], {}).get(a["data"]):
            item = {"values": values, "seeds": list(a["seeds"])}
        # a metric equal to another of the same row on every seed (e.g. the info probe's score = accuracy) is
        # stored as a reference to it
        same = next((m for m, x in row["metrics"].items() if x == item), None)
        row["metrics"][a["metric"]] = f"={same}" if same is not None else item
    for by_data in agg.values():
        for d, by_proto in by_data.items():
            for pname, p in by_proto.items():
                for rid, row in p["rows"].items():
                    head = row.pop("head")
                    shared = headers.setdefault(d, {}).setdefault(pname, {}).setdefault(rid, head)
                    own = {k: x for k, x in head.items() if shared.get(k) != x}  # only what differs
                    p["rows"][rid] = {**row.pop("metrics"), **({HEAD: own} if own else {})}
    out["seeds"] = seeds
    out["rows"] = headers
    out["aggregate"] = agg
    records = {name: {k: rec[k] for k in ("complete", "bench", "timings", "git_commit", "finished",
                                          "learned_temperature")
                      if k in rec}
               for name, rec in (results.get("records") or {}).items()}
    if isinstance(results.get("runs"), list):  # each run's entry without what its record repeats
        slim = []
        for r in results["runs"]:
            rec = records.get(r.get("folder"))
            derived = _run_from_record(rec) if rec is not None else {}
            slim.append({k: x for k, x in r.items() if k not in derived or derived[k] != x})
        out["runs"] = slim
    out["records"] = records
    return out


def _kept_metrics(results: Mapping[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(protocol, data entry) → the metrics the kept file stores: those of the report's tables and the leaderboard's."""
    from mmib.bench.report import table_metrics

    names: dict[tuple[str, str], list[str]] = {}
    kinds: dict[str, str] = {}
    for a in results.get("aggregate") or []:
        ms = names.setdefault((a["protocol"], a["data"]), [])
        if a["metric"] not in ms:
            ms.append(a["metric"])
        kinds.setdefault(a["protocol"], a["kind"])
    kinds.update(results.get("protocols") or {})
    primary = results.get("primary_metrics") or {}
    lb = results.get("leaderboard") or {}
    out = {}
    for (pname, d), ms in names.items():
        keep = set(table_metrics(kinds.get(pname, pname), ms, primary.get(pname)))
        if lb.get("protocol") == pname and lb.get("metric") in ms:
            keep.add(lb["metric"])
        out[(pname, d)] = keep
    return out


def unpack_results(kept: Mapping[str, Any]) -> dict[str, Any]:
    """The suite's results from their kept form (a results dict not in the kept form is returned as is)."""
    fmt = kept.get("format")
    if fmt not in (PACKED, PACKED_V1):
        return dict(kept)
    out = {k: v for k, v in kept.items() if k not in ("format", "seeds", "rows", "aggregate", "records")}
    out.setdefault("out_dir", "")
    seeds = kept.get("seeds") or {}
    headers = kept.get("rows") or {}
    methods = {rec["bench"]["variant"]: rec["bench"].get("method") for rec in (kept.get("records") or {}).values()}
    primary = kept.get("primary_metrics") or {}
    agg = []
    # per (variant, data, seed): protocol → rows, to rebuild each run's record
    per_run: dict[tuple[str, str, int], dict[str, dict[str, Any]]] = {}
    for v, by_data in (kept.get("aggregate") or {}).items():
        for d, by_proto in by_data.items():
            for pname, p in by_proto.items():
                for rid, row in p["rows"].items():
                    if fmt == PACKED:
                        own = row.get(HEAD) or {}
                        row = {"metrics": {m: x for m, x in row.items() if m != HEAD}}
                    else:
                        own = row
                    head = {**headers.get(d, {}).get(pname, {}).get(rid, {}), **own}
                    label, source, chance = _fill(head.get("label", ""), methods.get(v)), head.get("source", ""), \
                        head.get("chance") or {}
                    for m, item in row["metrics"].items():
                        if isinstance(item, str):  # "=<metric>": the same values as that metric
                            item = row["metrics"][item[1:]]
                        if fmt == PACKED_V1:
                            values, ss = item[3], (item[4] if len(item) > 4 else seeds[v][d])
                        elif isinstance(item, dict):
                            values, ss = item["values"], item["seeds"]
                        else:
                            values, ss = item, seeds[v][d]
                        values = [_nan(x) for x in values]
                        mean, std = (_nan(x) for x in mean_std(values))
                        agg.append({"variant": v, "method": methods.get(v), "data": d, "protocol": pname,
                                    "kind": p["kind"], "row": rid, "label": label, "source": source,
                                    "metric": m, "chance": chance.get(m), "seeds": list(ss),
                                    "values": list(values), "mean": mean, "std": std, "n": len(values)})
                        for s, x in zip(ss, values):
                            protos = per_run.setdefault((v, d, int(s)), {})
                            pr = protos.setdefault(pname, {"protocol": p["kind"], "rows": {}})
                            if pname in primary:
                                pr["primary_metric"] = primary[pname]
                            r = pr["rows"].setdefault(rid, {"id": rid, "label": label, "source": source,
                                                            "metrics": {}})
                            r["metrics"][m] = x
                            if m in chance:
                                r.setdefault("chance", {})[m] = chance[m]
    records = {}
    for name, rec in (kept.get("records") or {}).items():
        b = rec["bench"]
        protos = per_run.get((b["variant"], b["data"], int(b["seed"])), {})
        records[name] = {**rec, "protocols": {pn: {**p, "rows": list(p["rows"].values())} for pn, p in protos.items()}}
    if fmt == PACKED and isinstance(out.get("runs"), list):
        runs = []
        for r in out["runs"]:
            rec = (kept.get("records") or {}).get(r.get("folder"))
            derived = _run_from_record(rec) if rec is not None else {}
            runs.append({k: (r[k] if k in r else derived[k]) for k in dict.fromkeys([*derived, *r])})
        out["runs"] = runs
    out["aggregate"] = agg
    out["records"] = records
    return out


_NAN = float("nan")


def _nan(x: Any) -> Any:
    """None (or any NaN) as one NaN object, so that two unpackings of a file compare equal."""
    return _NAN if x is None or (isinstance(x, float) and math.isnan(x)) else x


def write_kept_results(path: str | os.PathLike, results: Mapping[str, Any]) -> Path:
    """Write the kept form, one aggregate row / run record per line (atomic)."""
    from mmib.utils.io import atomic_write_text

    packed = pack_results(results)

    def dump(x: Any) -> str:
        return json.dumps(x, separators=(",", ":"), allow_nan=True, default=str)

    def nested(obj: Mapping[str, Any], depth: int, indent: int = 1) -> list[str]:
        """``obj`` written level by level down to ``depth``; below it, one item per line."""
        out_lines = []
        items = list(obj.items())
        for i, (k, x) in enumerate(items):
            comma = "," if i < len(items) - 1 else ""
            pad = " " * indent
            if depth == 0 or not isinstance(x, Mapping):
                out_lines.append(f"{pad}{dump(k)}:{dump(x)}{comma}")
            elif "rows" in x and "kind" in x:  # a protocol: its kind, then one row per line
                out_lines.append(f"{pad}{dump(k)}:{{\"kind\":{dump(x['kind'])},\"rows\":{{")
                out_lines += nested(x["rows"], 0, indent + 1)
                out_lines.append(f"{pad}}}}}{comma}")
            else:
                out_lines.append(f"{pad}{dump(k)}:{{")
                out_lines += nested(x, depth - 1, indent + 1)
                out_lines.append(f"{pad}}}{comma}")
        return out_lines

    lines = ["{"]
    keys = list(packed)
    for i, k in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        v = packed[k]
        if k in ("aggregate", "rows"):  # variant → data → protocol → row / data → protocol → row
            lines.append(f"{dump(k)}:{{")
            lines += nested(v, 3 if k == "aggregate" else 2)
            lines.append(f"}}{comma}")
        elif k == "records" or k == "runs":
            items = list(v.items()) if isinstance(v, dict) else list(enumerate(v))
            lines.append(f"{dump(k)}:{'{' if isinstance(v, dict) else '['}")
            for j, (name, rec) in enumerate(items):
                head = f"{dump(name)}:" if isinstance(v, dict) else ""
                lines.append(f" {head}{dump(rec)}{',' if j < len(items) - 1 else ''}")
            lines.append(f"{'}' if isinstance(v, dict) else ']'}{comma}")
        else:
            lines.append(f"{dump(k)}:{dump(v)}{comma}")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # a malformed file is a bug here, not a surprise on the next machine
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p, text)
    return p


def read_results(path: str | os.PathLike) -> dict[str, Any] | None:
    """A suite's results (kept form or not), unpacked; None when the file is missing or not JSON."""
    try:
        return unpack_results(json.loads(Path(path).read_text()))
    except (OSError, ValueError):
        return None
