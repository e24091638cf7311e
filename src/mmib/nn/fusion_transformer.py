"""Token-level fusion: per-modality token encoders and a Transformer over the tokens of any subset of modalities.

Built for CoMM (Dufumier, Castillo-Navarro et al., ICLR 2025, §3.2 and App. B.3) and kept generic, so that any model
that fuses "tokens per modality" can use it:

* :class:`TokenEncoder` turns one modality into a token sequence ``(N, T_m, d)`` plus a padding mask ``(N, T_m)``
  (True = padding) — CoMM's "latent converters": vectors → feature tokenizer (Gorishniy et al. 2021, one token per
  encoder feature); signals → the 1-D CNN's feature map over time (+ 1-D sine-cosine positions); images → the CNN's
  feature map as patches (+ fixed 2-D sine-cosine positions, as CoMM's patch embedding on AlexNet maps); sequences →
  the per-step outputs of the GRU/LSTM/Transformer encoder, with the padding mask of the lengths;
* :class:`FusionTransformer` prepends a learnable [CLS] token, adds a learned modality-type embedding to each
  modality's tokens, runs a Transformer encoder over the concatenated tokens of the *requested* modalities and returns
  LayerNorm([CLS]). Modalities that are not requested are dropped from the input (CoMM code: masks
  ``[[T, F], [F, T], [T, T]]`` select which modalities' tokens enter), so the output for a subset is exactly
  invariant to the other modalities; sequence padding masks are applied in training and inference alike.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mmib.data.spec import ModalitySpec
from mmib.errors import MMIBError
from mmib.nn.encoders import (
    CNN1DEncoder,
    MLPEncoder,
    ResNetEncoder,
    RNNEncoder,
    TransformerSeqEncoder,
    build_encoder,
)


def sincos_1d(n: int, d: int, device: torch.device | None = None) -> torch.Tensor:
    """Fixed sine-cosine positional embedding (n, d) (Vaswani et al.)."""
    pos = torch.arange(n, dtype=torch.float32, device=device)[:, None]
    half = d // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=device) / max(half, 1))
    emb = torch.zeros(n, d, device=device)
    emb[:, 0 : 2 * half : 2] = torch.sin(pos * freq)
    emb[:, 1 : 2 * half : 2] = torch.cos(pos * freq)
    return emb


def sincos_time(times: torch.Tensor, d: int, resolution_s: float = 0.05) -> torch.Tensor:
    """Fixed sine-cosine embedding (n, d) of continuous times in seconds: :func:`sincos_1d`'s frequencies applied
    to ``times / resolution_s`` (one "position" per ``resolution_s`` seconds; periods from 2π·resolution_s to
    2π·10⁴·resolution_s seconds). Tokens of different modalities that share a clock share their positions."""
    pos = (times.to(torch.float32) / float(resolution_s))[:, None]
    half = d // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=times.device) / max(half, 1))
    emb = torch.zeros(times.shape[0], d, device=times.device)
    emb[:, 0 : 2 * half : 2] = torch.sin(pos * freq)
    emb[:, 1 : 2 * half : 2] = torch.cos(pos * freq)
    return emb


def sincos_2d(h: int, w: int, d: int, device: torch.device | None = None) -> torch.Tensor:
    """Fixed 2-D sine-cosine positional embedding (h·w, d) as in MAE/ViT: half the channels encode the row, half
    the column."""
    dh = d // 2
    row = sincos_1d(h, dh, device)[:, None, :].expand(h, w, dh)
    col = sincos_1d(w, d - dh, device)[None, :, :].expand(h, w, d - dh)
    return torch.cat([row, col], dim=-1).reshape(h * w, d)


class FeatureTokenizer(nn.Module):
    """One token per feature: token_j = h_j · W_j + b_j (Gorishniy et al., NeurIPS 2021), (N, F) → (N, F, d)."""

    def __init__(self, n_features: int, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_features, d) / math.sqrt(d))
        self.bias = nn.Parameter(torch.zeros(n_features, d))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h[:, :, None] * self.weight + self.bias


class TokenEncoder(nn.Module):
    """A modality → tokens ``(N, T, d)`` and padding ``(N, T)`` (or ``None``), from the encoder the encoder config
    picks for the modality's kind (``mmib.nn.encoders``), cut before its pooling.

    Args:
        ms: the modality.
        d_model: token size.
        encoder_cfg: the ``encoder`` config group (kinds and per-modality overrides).
        vector_tokens: for vectors, the encoder's output size = the number of feature tokens.
        time_axis: signals (1-D CNN) only, opt-in: ``(start_s, rate_hz)`` = the time of the first sample (s,
            e.g. relative to a trial marker) and the sampling rate. The tokens then get sine-cosine positions of
            their *time in seconds* (:func:`sincos_time`; token j of T' over T samples sits at
            ``start_s + (j + 0.5)·(T / T') / rate_hz``) instead of their index, so that two modalities with
            different rates and windows share one clock. ``None`` (default): index positions, as before.
        time_resolution_s: the ``resolution_s`` of :func:`sincos_time`.
    """

    def __init__(self, ms: ModalitySpec, d_model: int, encoder_cfg: Mapping[str, Any] | None = None,
                 vector_tokens: int = 16, time_axis: tuple[float, float] | None = None,
                 time_resolution_s: float = 0.05) -> None:
        super().__init__()
        self.kind = ms.kind
        out = vector_tokens if ms.kind == "vector" else d_model
        base = build_encoder(ms, out, encoder_cfg)
        self.pos: str | None = None
        if isinstance(base, MLPEncoder):
            self.net = base.net
            self.tokenizer: nn.Module = FeatureTokenizer(vector_tokens, d_model)
            self.arch = "mlp"
        elif isinstance(base, CNN1DEncoder):
            self.net = base.features
            self.tokenizer = nn.Linear(base.fc.in_features, d_model)
            self.arch, self.pos = "cnn1d", "1d"
        elif isinstance(base, ResNetEncoder):
            self.net = nn.Sequential(base.stem, base.stages)
            self.tokenizer = nn.Linear(base.fc.in_features, d_model)
            self.arch, self.pos = "resnet", "2d"
        elif isinstance(base, RNNEncoder):
            self.net = base.rnn
            self.tokenizer = nn.Linear(base.fc.in_features, d_model)
            self.arch = "rnn"
        elif isinstance(base, TransformerSeqEncoder):
            self.inp, self.pos_param, self.net = base.inp, base.pos, base.encoder
            self.max_len = base.max_len
            self.tokenizer = nn.Linear(base.fc.in_features, d_model)
            self.arch = "transformer"
        else:  # pragma: no cover - every encoder type is handled above
            raise MMIBError(f"modality '{ms.name}': no token encoder for {type(base).__name__}")
        self.d_model = d_model
        self.time_axis: tuple[float, float] | None = None
        if time_axis is not None:
            if self.arch != "cnn1d":
                raise MMIBError(f"modality '{ms.name}': time positions in seconds (time_axis) need a signal with the "
                                f"1-D CNN encoder, got a {ms.kind} ({self.arch})")
            start, rate = float(time_axis[0]), float(time_axis[1])
            if not (math.isfinite(start) and math.isfinite(rate) and rate > 0 and time_resolution_s > 0):
                raise MMIBError(f"modality '{ms.name}': time_axis needs a finite start (s) and a rate > 0 (Hz), and "
                                f"time_resolution_s > 0; got {time_axis!r}, {time_resolution_s!r}")
            self.time_axis, self.time_resolution_s = (start, rate), float(time_resolution_s)

    def token_times(self, n_samples: int, n_tokens: int, device: torch.device | None = None) -> torch.Tensor:
        """Times (s) of the ``n_tokens`` tokens of a signal of ``n_samples`` samples (needs ``time_axis``)."""
        if self.time_axis is None:
            raise MMIBError("token_times: this token encoder has no time_axis")
        start, rate = self.time_axis
        step = n_samples / n_tokens / rate
        return start + (torch.arange(n_tokens, dtype=torch.float32, device=device) + 0.5) * step

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        pad = None
        if self.arch == "mlp":
            tok = self.tokenizer(self.net(x))
        elif self.arch == "cnn1d":
            h = self.net(x).transpose(1, 2)  # (N, T', C)
            if self.time_axis is None:
                tok = self.tokenizer(h) + sincos_1d(h.shape[1], self.d_model, x.device)
            else:
                times = self.token_times(x.shape[-1], h.shape[1], x.device)
                tok = self.tokenizer(h) + sincos_time(times, self.d_model, self.time_resolution_s)
        elif self.arch == "resnet":
            h = self.net(x)  # (N, C, h, w)
            hh, ww = h.shape[-2:]
            tok = self.tokenizer(h.flatten(2).transpose(1, 2)) + sincos_2d(hh, ww, self.d_model, x.device)
        elif self.arch == "rnn":
            t = x.shape[1]
            if lengths is not None:
                packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu().clamp_min(1), batch_first=True,
                                                           enforce_sorted=False)
                out, _ = self.net(packed)
                h, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=t)
                pad = torch.arange(t, device=x.device)[None, :] >= lengths.to(x.device)[:, None]
            else:
                h, _ = self.net(x)
            tok = self.tokenizer(h)
        else:  # transformer
            t = x.shape[1]
            if t > self.max_len:
                raise MMIBError(f"sequence length {t} exceeds the encoder's max_len {self.max_len}")
            if lengths is not None:
                pad = torch.arange(t, device=x.device)[None, :] >= lengths.to(x.device)[:, None]
            h = self.net(self.inp(x) + self.pos_param[:, :t], src_key_padding_mask=pad)
            tok = self.tokenizer(h)
        return tok, pad


def _cls_only(layer: nn.TransformerEncoderLayer, x: torch.Tensor, key_pad: torch.Tensor | None) -> torch.Tensor:
    """The [CLS] row (position 0) of a pre-norm ``TransformerEncoderLayer`` applied to ``x``, computing the query,
    output projection and feed-forward block for that row only (the other rows do not affect it in the last
    layer): equal to ``layer(x, src_key_padding_mask=key_pad)[:, 0]``."""
    h = layer.norm1(x)
    a = layer.self_attn(h[:, :1], h, h, key_padding_mask=key_pad, need_weights=False)[0]
    c = x[:, :1] + layer.dropout1(a)
    c = c + layer.dropout2(layer.linear2(layer.dropout(layer.activation(layer.linear1(layer.norm2(c))))))
    return c[:, 0]


class FusionTransformer(nn.Module):
    """[CLS] + tokens of the requested modalities → Transformer encoder → LayerNorm of the [CLS] output.

    Args:
        modalities: names of every modality the module can fuse (fixes the modality-type embeddings).
        d_model: token size; n_heads, n_layers: Transformer shape (CoMM: 8 heads, 1 layer).
        dim_feedforward: feed-forward size (default 4·d_model); dropout: inside the Transformer.
        modality_embedding: add a learned per-modality embedding to that modality's tokens.

    ``forward(tokens, padding=None, modalities=None, return_tokens=False)``:
    ``tokens = {m: (N, T_m, d)}``; ``padding = {m: (N, T_m) bool, True = padding}`` (entries may be ``None``);
    ``modalities`` = the subset to fuse (default: every modality in ``tokens``); the others are dropped. Returns
    the fused (N, d), or (fused, token outputs (N, T, d), padding (N, T)) with ``return_tokens``.
    """

    def __init__(self, modalities: Sequence[str], d_model: int, n_heads: int = 8, n_layers: int = 1,
                 dim_feedforward: int | None = None, dropout: float = 0.0, modality_embedding: bool = True) -> None:
        super().__init__()
        if d_model % n_heads:
            raise MMIBError(f"FusionTransformer: d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if n_layers < 1:
            raise MMIBError(f"FusionTransformer: n_layers must be >= 1, got {n_layers}")
        self.modalities = tuple(modalities)
        if not self.modalities:
            raise MMIBError("FusionTransformer: needs at least one modality")
        self.d_model = d_model
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        nn.init.normal_(self.cls, std=0.02)
        self.type_embedding = nn.ParameterDict(
            {m: nn.Parameter(torch.zeros(1, 1, d_model)) for m in self.modalities}) if modality_embedding else None
        if self.type_embedding is not None:
            for p in self.type_embedding.values():
                nn.init.normal_(p, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward or 4 * d_model, dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.layers = nn.ModuleList([copy.deepcopy(layer) for _ in range(n_layers)])
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tokens: Mapping[str, torch.Tensor], padding: Mapping[str, torch.Tensor | None] | None = None,
                modalities: Sequence[str] | None = None, return_tokens: bool = False):
        mods = tuple(tokens) if modalities is None else tuple(modalities)
        if not mods:
            raise MMIBError("FusionTransformer: an empty set of modalities was requested")
        unknown = [m for m in mods if m not in self.modalities]
        if unknown:
            raise MMIBError(f"FusionTransformer: unknown modality {unknown}; known: {list(self.modalities)}")
        missing = [m for m in mods if m not in tokens]
        if missing:
            raise MMIBError(f"FusionTransformer: no tokens given for modality {missing}")
        order = [m for m in self.modalities if m in mods]
        n = tokens[order[0]].shape[0]
        seqs, pads = [self.cls.expand(n, -1, -1)], [torch.zeros(n, 1, dtype=torch.bool, device=self.cls.device)]
        for m in order:
            t = tokens[m]
            if t.dim() != 3 or t.shape[0] != n or t.shape[2] != self.d_model:
                raise MMIBError(f"FusionTransformer: tokens of '{m}' must be (N={n}, T, {self.d_model}), got "
                                f"{tuple(t.shape)}")
            if self.type_embedding is not None:
                t = t + self.type_embedding[m]
            seqs.append(t)
            p = (padding or {}).get(m)
            pads.append(p.to(t.device) if p is not None else torch.zeros(n, t.shape[1], dtype=torch.bool, device=t.device))
        x = torch.cat(seqs, dim=1)
        pad = torch.cat(pads, dim=1)
        key_pad = pad if bool(pad.any()) else None
        if return_tokens:
            h = x
            for layer in self.layers:
                h = layer(h, src_key_padding_mask=key_pad)
            return self.norm(h[:, 0]), h[:, 1:], pad[:, 1:]
        h = x
        for layer in self.layers[:-1]:
            h = layer(h, src_key_padding_mask=key_pad)
        return self.norm(_cls_only(self.layers[-1], h, key_pad))
