"""Controls-suite analyses as evaluation protocols (registered on import; the ``controls`` suite lists this module
under ``imports:``).

* ``embedding_share`` (OVA-IB's minimality control, issue 19): how much of each modality's embedding a ground-truth
  latent *occupies* — the share of the variance of the L2-normalized embedding ``emb:<m>`` (the space the objective
  and its minimality term ``‖z^(m) − mean_{i≠m} z^(i)‖²`` act on) that a linear regression on the latent explains.
  A linear probe asks whether a latent is *decodable*; it rescales what it reads, so it cannot see a latent that was
  shrunk but kept. The regression is fitted on ``fit_split`` (default ``train``) and scored on ``split`` (default
  ``test``): out of sample, so a latent unrelated to the embedding reads ≈ 0 (fitted and scored on the same rows, a
  k-dimensional latent reads about k / (n − 1) by chance alone: 0.027 for 8 dimensions on 300 rows). Options:
  ``latents`` (name → latent, ``{m}`` is replaced by the modality: default
  ``{nuisance: "nuisance_{m}", essence: essence}``), ``split``, ``fit_split``. Rows ``<name>/<modality>`` and
  ``<name>/mean`` (the mean over modalities), metric ``share`` (at most 1; below 0 when the fit does worse than the
  scored split's mean). A latent the data set does not declare is skipped with a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmib.bench.extensions import register_protocol
from mmib.eval.protocols.base import new_result, parse_options

DEFAULT_SHARE_LATENTS = {"nuisance": "nuisance_{m}", "essence": "essence"}


@dataclass
class EmbeddingShareOptions:
    """``embedding_share``'s options (see the module docstring)."""

    latents: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SHARE_LATENTS))
    split: str = "test"
    fit_split: str = "train"


def variance_share(z: np.ndarray, latent: np.ndarray, z_fit: np.ndarray | None = None,
                   latent_fit: np.ndarray | None = None) -> float:
    """R² of ``z`` (N, d) predicted linearly (with intercept) from ``latent`` (N,) or (N, k): the share of the total
    variance of ``z`` (about its own mean) that the latent explains, float64 least squares. With ``z_fit`` /
    ``latent_fit`` the regression is fitted on those rows and scored on ``z`` / ``latent`` (out of sample)."""
    z = np.asarray(z, dtype=np.float64)
    lat = np.asarray(latent, dtype=np.float64).reshape(len(z), -1)
    if z_fit is None:
        z_fit, lat_fit = z, lat
    else:
        z_fit = np.asarray(z_fit, dtype=np.float64)
        lat_fit = np.asarray(latent_fit, dtype=np.float64).reshape(len(z_fit), -1)
    coef = np.linalg.lstsq(np.hstack([lat_fit, np.ones((len(lat_fit), 1))]), z_fit, rcond=None)[0]
    zc = z - z.mean(0)
    total = float((zc**2).sum())
    if total <= 0.0:
        return float("nan")
    resid = z - np.hstack([lat, np.ones((len(lat), 1))]) @ coef
    return float(1.0 - (resid**2).sum() / total)


@register_protocol("embedding_share", replace=True)
def embedding_share(ctx, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    from mmib.errors import MMIBError, UnknownNameError

    opt = parse_options(EmbeddingShareOptions, options, "embedding_share")
    latents, split, fit_split = opt.latents, str(opt.split), str(opt.fit_split)
    if not isinstance(latents, Mapping) or not latents or not all(isinstance(v, str) for v in latents.values()):
        raise MMIBError(f"embedding_share: latents must be a mapping name -> latent name ('{{m}}' = the modality), "
                        f"got {latents!r}")
    for what, sp in (("split", split), ("fit_split", fit_split)):
        if sp not in ("train", "val", "test"):
            raise UnknownNameError(f"{what} of protocol 'embedding_share'", sp, ["train", "val", "test"])
    res = {**new_result("embedding_share", opt), "primary_metric": "share"}
    mods = ctx.modalities
    declared = dict(ctx.spec.latents)
    sf = ctx.features(split, mods, [f"emb:{m}" for m in mods])
    ff = ctx.features(fit_split, mods, [f"emb:{m}" for m in mods])

    def unit(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float64)
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)

    for name, pattern in latents.items():
        shares = {}
        for m in mods:
            lat = pattern.replace("{m}", m)
            if lat not in declared:
                res["notes"].append(f"{name}: latent '{lat}' is not declared by data set '{ctx.spec.name}'; skipped")
                continue
            for sp, got in ((split, sf), (fit_split, ff)):
                if lat not in got.latents:
                    raise MMIBError(f"embedding_share: latent '{lat}' is declared but missing from the {sp} batches")
            shares[m] = variance_share(unit(sf.features[f"emb:{m}"]), sf.latents[lat],
                                       unit(ff.features[f"emb:{m}"]), ff.latents[lat])
            res["rows"].append({"id": f"{name}/{m}", "source": "method", "latent": lat, "modality": m,
                                "label": f"{ctx.method.name}: share of emb:{m} explained by {lat}",
                                "metrics": {"share": shares[m]}})
        if shares:
            res["rows"].append({"id": f"{name}/mean", "source": "method", "latent": pattern,
                                "label": f"{ctx.method.name}: share explained by {pattern}, mean over modalities",
                                "metrics": {"share": float(np.mean(list(shares.values())))}})
    res["notes"].append(f"share of the variance of each L2-normalized embedding (emb:<m>, {split} split) explained by "
                        f"a linear regression on the latent fitted on the {fit_split} split")
    return res
