"""The suite's kept results file (``docs/results/<suite>/results.json``): small enough for the repository, complete
enough to continue the suite elsewhere and to regenerate every table.

:func:`pack_results` turns the suite's results (as :func:`mmib.bench.archive.collect_suite` returns them) into the
kept form; :func:`unpack_results` gives the same structure back. In the kept form

* ``aggregate`` is nested — variant → data entry → protocol → ``{"kind", "rows": {row id: {"label", "source",
  "chance": {metric: value}, "metrics": {metric: [mean, std, n, [per-seed values]]}}}}`` — with the seeds of each
  (variant, data entry) once in ``seeds`` (a metric measured on other seeds carries its own list as a fifth item);
  mean and std (``ddof=1``) as computed from the full-precision values;
* ``records`` keeps, per finished run (by folder name), its identity and fingerprint (``bench``), completeness,
  timings and code version; its final metrics are the per-seed values of the aggregate (not stored twice);
* a metric equal to another of its row on every seed is stored as ``"=<metric>"``;
* of a built-in protocol whose tables show only some metrics (e.g. ``info_probe``, ``subsets``: the primary metric;
  see :func:`mmib.bench.report.table_metrics`), only those and the leaderboard's metric are kept; the other metrics
  stay in each run's full record (the ``--archive`` directory);
* numbers are rounded to 7 significant digits (float32 precision, far below what any table shows);
* one aggregate row or run record per line, so that a new run changes a few lines in a diff.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PACKED = "packed-1"


def _r(x: Any) -> Any:
    if isinstance(x, float) and math.isfinite(x):
        return float(f"{x:.7g}")
    return x


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
    agg: dict[str, Any] = {}
    kept_metrics = _kept_metrics(results)
    for a in results.get("aggregate") or []:
        if a["metric"] not in kept_metrics.get((a["protocol"], a["data"]), ()):
            continue
        p = agg.setdefault(a["variant"], {}).setdefault(a["data"], {}).setdefault(
            a["protocol"], {"kind": a["kind"], "rows": {}})
        row = p["rows"].setdefault(a["row"], {"label": a.get("label", ""), "source": a.get("source", ""),
                                              "chance": {}, "metrics": {}})
        if a.get("chance") is not None:
            row["chance"][a["metric"]] = _r(a["chance"])
        item = [_r(a["mean"]), _r(a["std"]), a["n"], [_r(x) for x in a["values"]]]
        if list(a["seeds"]) != seeds.get(a["variant"], {}).get(a["data"]):
            item.append(list(a["seeds"]))
        # a metric equal to another of the same row on every seed (e.g. the info probe's score = accuracy) is
        # stored as a reference to it
        same = next((m for m, x in row["metrics"].items() if x == item), None)
        row["metrics"][a["metric"]] = f"={same}" if same is not None else item
    out["seeds"] = seeds
    out["aggregate"] = agg
    out["records"] = {name: {k: rec[k] for k in ("complete", "bench", "timings", "git_commit", "finished",
                                                          "learned_temperature")
                             if k in rec}
                      for name, rec in (results.get("records") or {}).items()}
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
    if kept.get("format") != PACKED:
        return dict(kept)
    out = {k: v for k, v in kept.items() if k not in ("format", "seeds", "aggregate", "records")}
    out.setdefault("out_dir", "")
    seeds = kept.get("seeds") or {}
    methods = {rec["bench"]["variant"]: rec["bench"].get("method") for rec in (kept.get("records") or {}).values()}
    primary = kept.get("primary_metrics") or {}
    agg = []
    # per (variant, data, seed): protocol → rows, to rebuild each run's record
    per_run: dict[tuple[str, str, int], dict[str, dict[str, Any]]] = {}
    for v, by_data in (kept.get("aggregate") or {}).items():
        for d, by_proto in by_data.items():
            for pname, p in by_proto.items():
                for rid, row in p["rows"].items():
                    for m, item in row["metrics"].items():
                        if isinstance(item, str):  # "=<metric>": the same values as that metric
                            item = row["metrics"][item[1:]]
                        mean, std, n, values = item[:4]
                        ss = item[4] if len(item) > 4 else seeds[v][d]
                        agg.append({"variant": v, "method": methods.get(v), "data": d, "protocol": pname,
                                    "kind": p["kind"], "row": rid, "label": row["label"], "source": row["source"],
                                    "metric": m, "chance": row["chance"].get(m), "seeds": list(ss),
                                    "values": list(values), "mean": _nan(mean), "std": _nan(std), "n": n})
                        for s, x in zip(ss, values):
                            protos = per_run.setdefault((v, d, int(s)), {})
                            pr = protos.setdefault(pname, {"protocol": p["kind"], "rows": {}})
                            if pname in primary:
                                pr["primary_metric"] = primary[pname]
                            r = pr["rows"].setdefault(rid, {"id": rid, "label": row["label"], "source": row["source"],
                                                            "metrics": {}})
                            r["metrics"][m] = x
                            if m in row["chance"]:
                                r.setdefault("chance", {})[m] = row["chance"][m]
    records = {}
    for name, rec in (kept.get("records") or {}).items():
        b = rec["bench"]
        protos = per_run.get((b["variant"], b["data"], int(b["seed"])), {})
        records[name] = {**rec, "protocols": {pn: {**p, "rows": list(p["rows"].values())} for pn, p in protos.items()}}
    out["aggregate"] = agg
    out["records"] = records
    return out


def _nan(x: Any) -> Any:
    return float("nan") if x is None else x


def write_kept_results(path: str | os.PathLike, results: Mapping[str, Any]) -> Path:
    """Write the kept form, one aggregate row / run record per line (atomic)."""
    from mmib.utils.io import atomic_write_text

    packed = pack_results(results)

    def dump(x: Any) -> str:
        return json.dumps(x, separators=(",", ":"), allow_nan=True, default=str)

    lines = ["{"]
    keys = list(packed)
    for i, k in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        v = packed[k]
        if k == "aggregate":
            lines.append(f"{dump(k)}:{{")
            # nested objects written level by level, one protocol row per line
            out_lines = []
            for vi, var in enumerate(v):
                out_lines.append(f" {dump(var)}:{{")
                for di, d in enumerate(v[var]):
                    out_lines.append(f"  {dump(d)}:{{")
                    for pi, pn in enumerate(v[var][d]):
                        p = v[var][d][pn]
                        out_lines.append(f"   {dump(pn)}:{{\"kind\":{dump(p['kind'])},\"rows\":{{")
                        rows = list(p["rows"].items())
                        for ri, (rid, row) in enumerate(rows):
                            out_lines.append(f"    {dump(rid)}:{dump(row)}{',' if ri < len(rows) - 1 else ''}")
                        out_lines.append(f"   }}}}{',' if pi < len(v[var][d]) - 1 else ''}")
                    out_lines.append(f"  }}{',' if di < len(v[var]) - 1 else ''}")
                out_lines.append(f" }}{',' if vi < len(v) - 1 else ''}")
            lines += out_lines
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
