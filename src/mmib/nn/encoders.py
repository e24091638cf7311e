"""Encoders chosen from a modality's kind; sizes come from the config, never from a data set.

=========  ==================  ==============================================================
kind       per-sample shape    encoders
=========  ==================  ==============================================================
vector     (D,)                ``mlp``
signal     (C, T)              ``cnn1d`` (adaptive pooling, any C and T), ``filterbank`` (band-power tokens,
                               needs the sampling rate)
sequence   (T, D)              ``gru``, ``lstm``, ``transformer`` (padding masks from lengths)
image      (C, H, W)           ``resnet`` (small ResNet, any channel count)
=========  ==================  ==============================================================

Every encoder maps a batch to ``(N, out_dim)``; sequence encoders also accept ``lengths`` (N,).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from mmib.data.spec import ModalitySpec
from mmib.errors import MMIBError, UnknownNameError
from mmib.nn.heads import MLP, activation


class MLPEncoder(nn.Module):
    def __init__(self, in_dim: int, out_dim: int = 256, hidden: tuple[int, ...] = (256, 256), act: str = "relu",
                 norm: str | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = MLP(in_dim, out_dim, hidden, act=act, norm=norm, dropout=dropout)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x)


class CNN1DEncoder(nn.Module):
    """Stack of Conv1d → BatchNorm → activation (→ max-pool) blocks, adaptive average pooling, linear."""

    def __init__(self, in_channels: int, out_dim: int = 256, channels: tuple[int, ...] = (32, 64, 128),
                 kernel_size: int = 7, pool: int = 2, act: str = "relu", dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for h in channels:
            layers += [nn.Conv1d(c, h, kernel_size, padding=kernel_size // 2), nn.BatchNorm1d(h), activation(act)]
            if pool > 1:
                layers.append(nn.MaxPool1d(pool, ceil_mode=True))
            c = h
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(c, out_dim)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc(self.drop(self.pool(self.features(x)).flatten(1)))


class BandPowerFeatures(nn.Module):
    """ShallowConvNet's front end (Schirrmeister et al. 2017), over a (N, C, T) signal: a bank of ``filters``
    learned temporal filters applied to every channel (Conv2d (1, kernel)), a spatial filter across all channels
    per output (Conv2d (C, 1)), BatchNorm, **square**, average over windows of ``pool`` samples every ``stride``
    samples, **log**: (N, filters, T') log band powers over time. There are T' = round(T / stride) windows; window
    j spans samples [j·stride − (pool − stride) // 2, … + pool) ∩ [0, T) (samples outside the epoch are left out of
    its mean), so it is centred near (j + 0.5)·stride — where a token encoder places token j of T' over T samples."""

    def __init__(self, in_channels: int, filters: int, kernel: int, pool: int, stride: int, eps: float = 1e-6) -> None:
        super().__init__()
        if kernel < 1 or pool < 1 or stride < 1 or stride > pool:
            raise ValueError(f"need kernel, pool, stride >= 1 and stride <= pool, got {kernel}, {pool}, {stride}")
        self.temporal = nn.Conv2d(1, filters, (1, kernel), padding=(0, kernel // 2), bias=False)
        self.spatial = nn.Conv2d(filters, filters, (in_channels, 1), bias=False)
        self.norm = nn.BatchNorm2d(filters)
        self.pool, self.stride, self.pad, self.eps = pool, stride, (pool - stride) // 2, float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[-1]
        if t < self.pool:
            raise ValueError(f"the signal has {t} samples, fewer than the {self.pool}-sample power window")
        n_out = max(1, int(round(t / self.stride)))
        right = max(0, (n_out - 1) * self.stride + self.pool - t - self.pad)
        h = self.norm(self.spatial(self.temporal(x[:, None])))  # (N, F, 1, T)
        f = nn.functional
        win, step = (1, self.pool), (1, self.stride)
        total = f.avg_pool2d(f.pad(h.square(), (self.pad, right)), win, step)
        count = f.avg_pool2d(f.pad(torch.ones_like(h[:1, :1]), (self.pad, right)), win, step)  # share of real samples
        p = (total / count)[..., :n_out]
        return torch.log(p.clamp_min(self.eps)).squeeze(2)  # (N, F, T')


class FilterbankEncoder(CNN1DEncoder):
    """A signal encoder whose feature map is time-resolved **log band power** (:class:`BandPowerFeatures`:
    temporal filterbank → spatial filter → square → average → log, ShallowConvNet's design for EEG), then adaptive
    average pooling and a linear layer as :class:`CNN1DEncoder` (it is one: a token encoder takes ``features`` as the
    (N, filters, T') token map). Sizes are in seconds, converted with the sampling ``rate``: filters of ``kernel_s``
    (odd number of samples), power windows of ``pool_s`` every ``stride_s``. A short oscillatory burst (e.g. 0.5 s of
    30–45 Hz) stays one window's power instead of being mixed into the epoch."""

    def __init__(self, in_channels: int, out_dim: int = 256, rate: float | None = None, filters: int = 40,
                 kernel_s: float = 0.2, pool_s: float = 0.5, stride_s: float = 0.25, dropout: float = 0.0) -> None:
        nn.Module.__init__(self)
        if rate is None or not rate > 0:
            raise ValueError("encoder 'filterbank' needs the modality's sampling rate (ModalitySpec.rate)")
        if not (kernel_s > 0 and pool_s > 0 and stride_s > 0):
            raise ValueError(f"kernel_s, pool_s and stride_s must be > 0 s, got {kernel_s}, {pool_s}, {stride_s}")
        kernel = max(1, int(round(kernel_s * rate))) // 2 * 2 + 1
        pool, stride = max(1, int(round(pool_s * rate))), max(1, int(round(stride_s * rate)))
        self.features = BandPowerFeatures(in_channels, int(filters), kernel, pool, stride)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(int(filters), out_dim)
        self.out_dim = out_dim


def _padding_mask(lengths: torch.Tensor | None, t: int, device: torch.device) -> torch.Tensor | None:
    if lengths is None:
        return None
    return torch.arange(t, device=device)[None, :] >= lengths.to(device)[:, None]  # True = padding


class RNNEncoder(nn.Module):
    """GRU or LSTM over a (N, T, D) sequence; the last valid hidden state (packed by lengths) → linear."""

    def __init__(self, in_dim: int, out_dim: int = 256, hidden: int = 128, num_layers: int = 1, cell: str = "gru",
                 bidirectional: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = rnn(in_dim, hidden, num_layers=num_layers, batch_first=True, bidirectional=bidirectional,
                       dropout=dropout if num_layers > 1 else 0.0)
        self.fc = nn.Linear(hidden * (2 if bidirectional else 1), out_dim)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu().clamp_min(1), batch_first=True,
                                                       enforce_sorted=False)
            _, h = self.rnn(packed)
        else:
            _, h = self.rnn(x)
        if isinstance(h, tuple):  # LSTM
            h = h[0]
        if self.rnn.bidirectional:
            last = torch.cat([h[-2], h[-1]], dim=-1)
        else:
            last = h[-1]
        return self.fc(last)


class TransformerSeqEncoder(nn.Module):
    """A small Transformer encoder over a (N, T, D) sequence with a padding mask; masked mean pooling."""

    def __init__(self, in_dim: int, out_dim: int = 256, d_model: int = 64, n_heads: int = 4, n_layers: int = 2,
                 dim_feedforward: int = 128, dropout: float = 0.1, max_len: int = 4096) -> None:
        super().__init__()
        self.inp = nn.Linear(in_dim, d_model)
        self.pos = nn.Parameter(torch.zeros(1, max_len, d_model))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.fc = nn.Linear(d_model, out_dim)
        self.out_dim = out_dim
        self.max_len = max_len

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        n, t, _ = x.shape
        if t > self.max_len:
            raise ValueError(f"TransformerSeqEncoder: sequence length {t} exceeds max_len {self.max_len}")
        pad = _padding_mask(lengths, t, x.device)
        h = self.encoder(self.inp(x) + self.pos[:, :t], src_key_padding_mask=pad)
        if pad is None:
            pooled = h.mean(1)
        else:
            keep = (~pad).unsqueeze(-1).float()
            pooled = (h * keep).sum(1) / keep.sum(1).clamp_min(1.0)
        return self.fc(pooled)


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.b1(self.c1(x)))
        return torch.relu(self.b2(self.c2(y)) + self.short(x))


class ResNetEncoder(nn.Module):
    """A small ResNet (basic blocks, one per stage by default) for images with any number of channels."""

    def __init__(self, in_channels: int, out_dim: int = 256, widths: tuple[int, ...] = (32, 64, 128),
                 blocks_per_stage: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU())
        stages: list[nn.Module] = []
        c = widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks_per_stage):
                stages.append(_BasicBlock(c, w, 2 if (b == 0 and i > 0) else 1))
                c = w
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(c, out_dim)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h = self.stages(self.stem(x))
        return self.fc(h.mean(dim=(2, 3)))


ENCODERS = {"mlp": "vector", "cnn1d": "signal", "filterbank": "signal", "gru": "sequence", "lstm": "sequence", "transformer": "sequence",
            "resnet": "image"}
_ENCODER_CLASSES = {"mlp": MLPEncoder, "cnn1d": CNN1DEncoder, "filterbank": FilterbankEncoder, "gru": RNNEncoder,
                    "lstm": RNNEncoder, "transformer": TransformerSeqEncoder, "resnet": ResNetEncoder}
DEFAULT_ENCODER = {"vector": "mlp", "signal": "cnn1d", "sequence": "gru", "image": "resnet"}


def build_encoder(ms: ModalitySpec, out_dim: int, cfg: Mapping[str, Any] | None = None) -> nn.Module:
    """Build the encoder of modality ``ms`` from an encoder config.

    ``cfg`` maps kinds to settings (``{"vector": {"type": "mlp", "hidden": [256, 256]}, ...}``) and may hold
    per-modality overrides under ``modalities: {name: {...}}``.
    """
    cfg = dict(cfg or {})
    settings = dict(cfg.get(ms.kind, {}) or {})
    settings.update(dict((cfg.get("modalities") or {}).get(ms.name, {}) or {}))
    etype = settings.pop("type", DEFAULT_ENCODER[ms.kind])
    if not isinstance(etype, str) or etype not in ENCODERS:
        err = UnknownNameError("encoder type", str(etype), tuple(ENCODERS))
        err.args = (f"modality '{ms.name}': {err}",)
        raise err
    if ENCODERS[etype] != ms.kind:
        raise MMIBError(
            f"modality '{ms.name}' is a {ms.kind}; encoder '{etype}' expects a {ENCODERS[etype]} "
            f"(valid for {ms.kind}: {', '.join(k for k, v in ENCODERS.items() if v == ms.kind)})"
        )
    # settings of another encoder type of the same kind (the kind's defaults, e.g. the GRU's hidden/num_layers when
    # a user switches `encoder.sequence.type=transformer`) do not apply to this one; any other key is still checked
    accepted = set(inspect.signature(_ENCODER_CLASSES[etype].__init__).parameters)
    others = {p for t, k in ENCODERS.items() if k == ms.kind and t != etype
              for p in inspect.signature(_ENCODER_CLASSES[t].__init__).parameters}
    settings = {k: v for k, v in settings.items() if k in accepted or k not in others}
    for k in ("hidden", "channels", "widths"):
        if k in settings and settings[k] is not None and not isinstance(settings[k], int):
            settings[k] = tuple(settings[k])
    try:
        if etype == "mlp":
            return MLPEncoder(ms.feature_dim, out_dim, **settings)
        if etype == "cnn1d":
            return CNN1DEncoder(ms.feature_dim, out_dim, **settings)
        if etype == "filterbank":
            return FilterbankEncoder(ms.feature_dim, out_dim, **{"rate": ms.rate, **settings})
        if etype in ("gru", "lstm"):
            return RNNEncoder(ms.feature_dim, out_dim, cell=etype, **settings)
        if etype == "transformer":
            return TransformerSeqEncoder(ms.feature_dim, out_dim, **settings)
        return ResNetEncoder(ms.feature_dim, out_dim, **settings)
    except (TypeError, ValueError) as e:  # unexpected keywords, bad values (e.g. an unknown activation)
        raise MMIBError(f"modality '{ms.name}': bad settings for encoder '{etype}': {e}") from e
