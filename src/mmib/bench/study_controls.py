"""Controls-suite analyses as evaluation protocols (registered on import; the ``controls`` suite lists this module
under ``imports:``).

* ``embedding_share`` (OVA-IB's minimality control, issue 19): how much of each modality's embedding a ground-truth
  latent *occupies* — the share of the variance of the L2-normalized embedding ``emb:<m>`` (the space the objective
  and its minimality term ``‖z^(m) − mean_{i≠m} z^(i)‖²`` act on) that a linear regression on the latent explains.
  A linear probe asks whether a latent is *decodable*; it rescales what it reads, so it cannot see a latent that was
  shrunk but kept. Options: ``latents`` (name → latent, ``{m}`` is replaced by the modality: default
  ``{nuisance: "nuisance_{m}", essence: essence}``), ``split`` (default ``test``). Rows ``<name>/<modality>`` and
  ``<name>/mean`` (the mean over modalities), metric ``share`` in [0, 1]. A latent the data set does not declare
  is skipped with a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mmib.bench.extensions import register_protocol

EMBEDDING_SHARE_KEYS = ("latents", "split")
DEFAULT_SHARE_LATENTS = {"nuisance": "nuisance_{m}", "essence": "essence"}


def variance_share(z: np.ndarray, latent: np.ndarray) -> float:
    """R² of ``z`` (N, d) regressed linearly (with intercept) on ``latent`` (N,) or (N, k): the share of the total
    variance of ``z`` that the latent explains (float64 least squares)."""
    z = np.asarray(z, dtype=np.float64)
    lat = np.asarray(latent, dtype=np.float64).reshape(len(z), -1)
    a = np.hstack([lat - lat.mean(0), np.ones((len(lat), 1))])
    zc = z - z.mean(0)
    total = float((zc**2).sum())
    if total <= 0.0:
        return float("nan")
    resid = zc - a @ np.linalg.lstsq(a, zc, rcond=None)[0]
    return float(1.0 - (resid**2).sum() / total)


@register_protocol("embedding_share", replace=True)
def embedding_share(ctx, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    from mmib.errors import MMIBError, UnknownNameError

    opts = dict(options or {})
    for k in opts:
        if k not in EMBEDDING_SHARE_KEYS:
            raise UnknownNameError("option of protocol 'embedding_share'", str(k), list(EMBEDDING_SHARE_KEYS))
    latents = opts.get("latents", DEFAULT_SHARE_LATENTS)
    if not isinstance(latents, Mapping) or not latents or not all(isinstance(v, str) for v in latents.values()):
        raise MMIBError(f"embedding_share: latents must be a mapping name -> latent name ('{{m}}' = the modality), "
                        f"got {latents!r}")
    split = str(opts.get("split", "test"))
    if split not in ("train", "val", "test"):
        raise UnknownNameError("split of protocol 'embedding_share'", split, ["train", "val", "test"])
    res = {"protocol": "embedding_share", "options": {"latents": dict(latents), "split": split}, "rows": [],
           "notes": [], "plots": {}, "primary_metric": "share"}
    mods = ctx.modalities
    declared = dict(ctx.spec.latents)
    sf = ctx.features(split, mods, [f"emb:{m}" for m in mods])
    for name, pattern in latents.items():
        shares = {}
        for m in mods:
            lat = pattern.replace("{m}", m)
            if lat not in declared:
                res["notes"].append(f"{name}: latent '{lat}' is not declared by data set '{ctx.spec.name}'; skipped")
                continue
            if lat not in sf.latents:
                raise MMIBError(f"embedding_share: latent '{lat}' is declared but missing from the {split} batches")
            z = sf.features[f"emb:{m}"].astype(np.float64)
            z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
            shares[m] = variance_share(z, sf.latents[lat])
            res["rows"].append({"id": f"{name}/{m}", "source": "method", "latent": lat, "modality": m,
                                "label": f"{ctx.method.name}: share of emb:{m} explained by {lat}",
                                "metrics": {"share": shares[m]}})
        if shares:
            res["rows"].append({"id": f"{name}/mean", "source": "method", "latent": pattern,
                                "label": f"{ctx.method.name}: share explained by {pattern}, mean over modalities",
                                "metrics": {"share": float(np.mean(list(shares.values())))}})
    res["notes"].append(f"share of the variance of each L2-normalized embedding (emb:<m>, {split} split) explained by "
                        "a linear regression on the latent")
    return res
