"""Building blocks of ``rus`` (:mod:`mmib.methods.rus`): the default epoch start of a modality's time axis and the
GRU temporal model."""

from __future__ import annotations

import torch
from torch import nn

from mmib.data.physio.targets import require_rate
from mmib.data.spec import ModalitySpec
from mmib.errors import MMIBError


def default_time_start(ms: ModalitySpec) -> float:
    """The time (s, relative to the trial marker) of the first sample of a modality's epochs when
    ``method.time_start`` does not give it: for ``eeg`` / ``fnirs`` the epoch start of the MNE pipelines
    (:class:`~mmib.data.physio.preprocess.EEGPipeline` −0.5 s, :class:`~mmib.data.physio.preprocess.FNIRSPipeline`
    −2 s; checked against the epoch length), 0 otherwise. :class:`~mmib.data.spec.ModalitySpec` carries the rate but
    not the epoch start."""
    from mmib.data.physio.preprocess import EEGPipeline, FNIRSPipeline

    pipe = {"eeg": EEGPipeline, "fnirs": FNIRSPipeline}.get(ms.name)
    if pipe is None:
        return 0.0
    p = pipe()
    rate = require_rate(ms, "time positions in seconds")
    expected = int(round((p.tmax - p.tmin) * rate)) + 1
    if abs(int(ms.shape[-1]) - expected) > 1:
        raise MMIBError(f"method 'rus': modality '{ms.name}' has {ms.shape[-1]} samples at {rate:g} Hz, not the "
                        f"{expected} of the default {p.tmin:g}…{p.tmax:g} s epoch window; set "
                        f"method.time_start.{ms.name} to its epoch start (s relative to the trial marker), or "
                        "method.positions=index")
    return float(p.tmin)


class GRUPool(nn.Module):
    """GRU over tokens (N, T, d) → last hidden state (N, d)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.gru = nn.GRU(d, d, batch_first=True)
        self.norm = nn.LayerNorm(d)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(tokens)
        return self.norm(h[-1])
