"""Clock alignment of two devices from shared trigger times: offset and linear drift, robust to lost triggers.

Two devices (an EEG amplifier and an fNIRS system) each record the trigger pulses of one experiment on their own
clock. Device B's clock relates to device A's by ``t_b = offset + (1 + drift) * t_a`` (a start offset and a
constant rate difference: crystal oscillators drift by tens of ppm). Either device may miss a trigger or record an
extra one. :func:`align_triggers`:

1. **Pattern matching.** For every pair of triggers (i in A, j in B) whose neighbouring inter-trigger intervals agree
   (within ``tol_s``; and whose labels agree when labels are given) the hypothesis "i and j are the same pulse" gives
   an offset ``t_b[j] - t_a[i]``; each hypothesis is scored by how many A triggers then land within ``tol_s`` of a B
   trigger (of the same label). Random ITIs make the right hypothesis stand out; strictly periodic triggers are
   ambiguous (a shifted hypothesis matches within 10 % as many), and the function says so rather than guess.
2. **Robust linear fit.** On the matched pairs, a Theil–Sen line (:func:`scipy.stats.theilslopes`), then re-matching
   against the line and a least-squares refit on the pairs within ``tol_s`` (repeated until the matches settle).

Raises :class:`~mmib.data.physio.read_base.PhysioInputError` naming both recordings when fewer than ``min_matches``
triggers (default: half of the smaller set, at least 3) can be matched, or when two hypotheses tie.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmib.data.physio.read_base import PhysioInputError


@dataclass
class ClockAlignment:
    """``t_b = offset_s + (1 + drift) * t_a`` and the matched trigger pairs.

    Attributes:
        offset_s: offset of clock B at A's time 0 (s).
        drift: relative rate difference (dimensionless; 50e-6 = 50 ppm: B's clock gains 50 µs per second).
        pairs: (n, 2) indices ``(i in A, j in B)`` of the matched triggers, in A's order.
        residual_s: RMS of the matched triggers' residuals (s).
        unmatched_a, unmatched_b: indices of the triggers left without a partner.
    """

    offset_s: float
    drift: float
    pairs: np.ndarray
    residual_s: float
    unmatched_a: np.ndarray
    unmatched_b: np.ndarray

    def to_b(self, t_a) -> np.ndarray:
        return self.offset_s + (1.0 + self.drift) * np.asarray(t_a, dtype=float)

    def to_a(self, t_b) -> np.ndarray:
        return (np.asarray(t_b, dtype=float) - self.offset_s) / (1.0 + self.drift)

    def as_dict(self) -> dict:
        return {"offset_s": self.offset_s, "drift_ppm": self.drift * 1e6, "n_matched": int(len(self.pairs)),
                "residual_ms": self.residual_s * 1e3, "unmatched_a": self.unmatched_a.tolist(),
                "unmatched_b": self.unmatched_b.tolist()}  # fmt: skip


def _match(t_a, t_b, lab_a, lab_b, pred_b, tol) -> np.ndarray:
    """Greedy one-to-one matching of A's predicted times to B's triggers within ``tol`` (same label)."""
    order = np.argsort(t_b)
    sb = t_b[order]
    pos = np.searchsorted(sb, pred_b)
    cand = []
    for i, p in enumerate(pos):
        for k in (p - 1, p):
            if 0 <= k < len(sb):
                j = int(order[k])
                d = abs(sb[k] - pred_b[i])
                if d <= tol and lab_a[i] == lab_b[j]:
                    cand.append((d, i, j))
    cand.sort()
    used_a, used_b, pairs = set(), set(), []
    for _, i, j in cand:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j))
    pairs.sort()
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def align_triggers(
    t_a: Sequence[float],
    t_b: Sequence[float],
    labels_a: Sequence | None = None,
    labels_b: Sequence | None = None,
    tol_s: float = 0.25,
    max_drift: float = 1e-3,
    min_matches: int | None = None,
    names: tuple[str, str] = ("recording A", "recording B"),
) -> ClockAlignment:
    """Estimate offset and drift of clock B relative to clock A from trigger times (see the module docstring).

    Args:
        t_a, t_b: trigger times (s) on each device's clock.
        labels_a, labels_b: optional trigger labels (conditions); only equal labels match.
        tol_s: how far (s) a trigger may land from its partner: sampling period of the slower device plus jitter
            (default 0.25 s; the drift over the first matching step counts too, so keep it above
            ``max_drift × recording length``).
        max_drift: the largest |drift| accepted (default 1e-3 = 1000 ppm).
        min_matches: fewest matched triggers accepted (default: max(3, half the smaller set)).
        names: the two recordings, for error messages.
    """
    from scipy.stats import theilslopes

    ta, tb = np.asarray(t_a, dtype=float), np.asarray(t_b, dtype=float)
    la = np.asarray(labels_a if labels_a is not None else [""] * len(ta), dtype=object)
    lb = np.asarray(labels_b if labels_b is not None else [""] * len(tb), dtype=object)
    where = f"{names[0]} and {names[1]}"
    if len(la) != len(ta) or len(lb) != len(tb):
        raise PhysioInputError(f"{where}: one label per trigger expected")
    if not (np.all(np.isfinite(ta)) and np.all(np.isfinite(tb))):
        raise PhysioInputError(f"{where}: trigger times must be finite")
    need = max(3, min(len(ta), len(tb)) // 2) if min_matches is None else int(min_matches)
    if min(len(ta), len(tb)) < need:
        raise PhysioInputError(f"{where}: cannot align clocks: {len(ta)} and {len(tb)} triggers, at least {need} "
                               "needed in each")  # fmt: skip
    oa, ob = np.argsort(ta), np.argsort(tb)
    ta, tb, la, lb = ta[oa], tb[ob], la[oa], lb[ob]
    ia, ib = np.diff(ta), np.diff(tb)
    # hypotheses: pairs (i, j) whose following and preceding intervals (where both exist) agree
    nan = np.array([np.nan])
    nxt_a, prv_a = np.r_[ia, nan], np.r_[nan, ia]
    nxt_b, prv_b = np.r_[ib, nan], np.r_[nan, ib]
    with np.errstate(invalid="ignore"):
        d_next = np.abs(nxt_a[:, None] - nxt_b[None, :])
        d_prev = np.abs(prv_a[:, None] - prv_b[None, :])
    ok_next = np.where(np.isnan(d_next), True, d_next <= tol_s)
    ok_prev = np.where(np.isnan(d_prev), True, d_prev <= tol_s)
    some = ~(np.isnan(d_next) & np.isnan(d_prev))
    cand = ok_next & ok_prev & some & (la[:, None] == lb[None, :])
    hyp: dict[int, float] = {}
    for i, j in zip(*np.nonzero(cand)):
        off = float(tb[j] - ta[i])
        hyp.setdefault(int(round(off / tol_s)), off)
    if not hyp:
        raise PhysioInputError(f"{where}: cannot match the triggers: no inter-trigger interval of one recording "
                               f"matches the other's within {tol_s} s")  # fmt: skip
    def quick(off: float) -> int:  # triggers of A with a same-label trigger of B within tol (not one-to-one)
        pos = np.clip(np.searchsorted(tb, ta + off), 1, len(tb) - 1)
        near = np.where(np.abs(tb[pos - 1] - ta - off) <= np.abs(tb[pos] - ta - off), pos - 1, pos)
        return int(np.sum((np.abs(tb[near] - ta - off) <= tol_s) & (lb[near] == la)))

    top = sorted(hyp.values(), key=quick, reverse=True)[:20]
    scored = sorted(((len(_match(ta, tb, la, lb, ta + off, tol_s)), off) for off in top), reverse=True)
    best_n, best_off = scored[0]
    margin = max(2, int(0.1 * best_n))  # the right offset must win clearly; a shifted periodic train loses ~1
    rivals = [off for n, off in scored[1:] if n > best_n - margin and abs(off - best_off) > 2 * tol_s]
    if rivals:
        raise PhysioInputError(f"{where}: cannot match the triggers unambiguously: offsets {best_off:.2f} s and "
                               f"{rivals[0]:.2f} s match about as many ({best_n}) triggers (periodic triggers?)")  # fmt: skip
    if best_n < need:
        raise PhysioInputError(f"{where}: cannot match the triggers: at best {best_n} of {len(ta)}/{len(tb)} "
                               f"agree (at least {need} needed)")  # fmt: skip
    pairs = _match(ta, tb, la, lb, ta + best_off, tol_s)
    slope, icpt = 1.0, best_off
    for _ in range(10):
        x, y = ta[pairs[:, 0]], tb[pairs[:, 1]]
        if len(pairs) >= 3:
            slope, icpt, _, _ = theilslopes(y, x)
        keep = np.abs(y - (icpt + slope * x)) <= tol_s
        if keep.sum() >= 2:
            slope, icpt = np.polyfit(x[keep], y[keep], 1)
        new = _match(ta, tb, la, lb, icpt + slope * ta, tol_s)
        if np.array_equal(new, pairs):
            break
        pairs = new
    if len(pairs) < need:
        raise PhysioInputError(f"{where}: cannot match the triggers: only {len(pairs)} agree after the fit "
                               f"(at least {need} needed)")  # fmt: skip
    drift = float(slope - 1.0)
    if abs(drift) > max_drift:
        raise PhysioInputError(f"{where}: the triggers imply a clock drift of {drift * 1e6:.0f} ppm, beyond the "
                               f"{max_drift * 1e6:.0f} ppm accepted; are these recordings of the same session?")  # fmt: skip
    res = tb[pairs[:, 1]] - (icpt + slope * ta[pairs[:, 0]])
    pairs_orig = np.stack([oa[pairs[:, 0]], ob[pairs[:, 1]]], axis=1)
    return ClockAlignment(
        offset_s=float(icpt), drift=drift, pairs=pairs_orig, residual_s=float(np.sqrt(np.mean(res**2))),
        unmatched_a=np.setdiff1d(np.arange(len(ta)), pairs_orig[:, 0]),
        unmatched_b=np.setdiff1d(np.arange(len(tb)), pairs_orig[:, 1]),
    )  # fmt: skip
