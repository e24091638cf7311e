"""Sensor layouts for the simulators: a 10-20 EEG montage and fNIRS source-detector pairs placed on 10-20 sites.

Positions come from MNE's template montages (``colin27_1020`` on MNE >= 1.13, ``standard_1020`` before), in metres,
in MNE's head frame.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

#: 16 EEG channels of the 10-20 system, covering frontal, central, temporal, parietal and occipital sites
DEFAULT_EEG_CHANNELS: tuple[str, ...] = (
    "Fp1", "Fp2", "F3", "Fz", "F4", "T7", "C3", "Cz", "C4", "T8", "P3", "Pz", "P4", "O1", "Oz", "O2",
)  # fmt: skip

#: fNIRS source-detector pairs (source site, detector site), ~3-4 cm apart, bilateral motor cortex first,
#: then prefrontal; the first ``n`` are used for ``n`` channels
DEFAULT_FNIRS_PAIRS: tuple[tuple[str, str], ...] = (
    ("FC3", "C3"), ("FC4", "C4"), ("CP3", "C3"), ("CP4", "C4"),
    ("FC3", "FC5"), ("FC4", "FC6"), ("CP3", "CP5"), ("CP4", "CP6"),
    ("FC3", "FC1"), ("FC4", "FC2"), ("CP3", "CP1"), ("CP4", "CP2"),
    ("AF3", "F3"), ("AF4", "F4"), ("AF3", "AF7"), ("AF4", "AF8"),
)  # fmt: skip


def standard_montage():
    """MNE's template 10-20 montage (``colin27_1020``, or ``standard_1020`` on MNE < 1.13)."""
    import mne

    names = mne.channels.get_builtin_montages()
    name = "colin27_1020" if "colin27_1020" in names else "standard_1020"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return mne.channels.make_standard_montage(name)


def site_positions(sites: Sequence[str]) -> np.ndarray:
    """(n, 3) head-frame positions in metres of 10-20 sites.

    Raises:
        ValueError: for a site name the template montage does not hold.
    """
    pos = standard_montage().get_positions()["ch_pos"]
    missing = [s for s in sites if s not in pos]
    if missing:
        raise ValueError(
            f"unknown 10-20 site {', '.join(map(repr, missing))}; valid sites include "
            f"{', '.join(list(pos)[:20])}, …"
        )
    return np.array([pos[s] for s in sites], dtype=float)


def fnirs_layout(n_channels: int, pairs: Sequence[tuple[str, str]] = DEFAULT_FNIRS_PAIRS):
    """Sources, detectors and channels of an fNIRS layout of ``n_channels`` source-detector pairs.

    Returns:
        ``(channel_names, source_positions, detector_positions)``: names ``S<i>_D<j>`` (1-based, numbered by first
        appearance) and (n_channels, 3) positions in metres.
    """
    if not 1 <= n_channels <= len(pairs):
        raise ValueError(f"n_fnirs_channels must lie in [1, {len(pairs)}] for this layout, got {n_channels}")
    use = list(pairs[:n_channels])
    sources: list[str] = []
    detectors: list[str] = []
    names = []
    for s, d in use:
        if s not in sources:
            sources.append(s)
        if d not in detectors:
            detectors.append(d)
        names.append(f"S{sources.index(s) + 1}_D{detectors.index(d) + 1}")
    src_pos = site_positions([s for s, _ in use])
    det_pos = site_positions([d for _, d in use])
    return names, src_pos, det_pos
