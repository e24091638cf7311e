"""Augmentations per data kind, applied to whole batches, per sample with a probability, seeded by a generator.

Every augmentation is a callable ``aug(x, g, lengths=None) -> x'`` on a batch of one modality (the batch dimension
first) that draws all its randomness from the :class:`torch.Generator` ``g`` (so a method that owns a generator
gets reproducible views). Shapes follow :mod:`mmib.data.spec`: vector ``(N, D)``, sequence ``(N, T, D)``, signal
``(N, C, T)``, image ``(N, C, H, W)``. Padded sequence steps (``t >= lengths[n]``) stay zero.

==========================  ================  =================================================================
name                        kinds             what (source)
==========================  ================  =================================================================
``noise``                   all               add N(0, σ²) to every value (CoMM App. B.2: σ = 0.1)
``time_drop``               sequence, signal  set a fraction ~ U(0, max_fraction) of time steps to 0 (CoMM: 0–80%)
``crop``                    sequence, signal  keep a random window of U(min, max) of the valid length, resampled
                                              back to the full length (CoMM App. C.1: 8%–100%)
``permute``                 sequence, signal  cut the valid part in ``n_segments`` and shuffle them
``mixup``                   vector, sequence  x ← λx + (1−λ)x_π, partner π from the batch, λ ~ U(λ_min, 1)
                            signal, image
``resized_crop``            image             SimCLR RandomResizedCrop (scale, ratio), bilinear
``hflip``                   image             horizontal flip
``color_jitter``            image             brightness, contrast, saturation, hue (SimCLR 0.4, 0.4, 0.4, 0.1)
``grayscale``               image             luma to every channel
``gaussian_blur``           image             σ ~ U(0.1, 2.0) (in pixels at 224 px, scaled to the image size)
==========================  ================  =================================================================

:class:`RandomApply` applies an augmentation to each sample independently with probability ``p``;
:class:`Compose` chains them. :func:`build_augmentation` builds a pipeline from a config list such as
``[{"name": "noise", "sigma": 0.1, "p": 0.5}, {"name": "time_drop", "max_fraction": 0.8, "p": 0.5}]``, and
:func:`default_augmentation_config` gives the CoMM defaults of a kind.

:class:`UniqueAugmentation` is FactorCL's *unique augmentation* (Liang et al., NeurIPS 2023, §3.2, Eqs. 17–18):
augment X2 given X1 so that the information X2 shares with X1 is kept. The perturbation of a base augmentation is
projected onto the orthogonal complement of the subspace of X2 that is linearly predictable from X1 (estimated
on the batch by ridge regression and an SVD), or restricted to user-given "unique" features (the paper's "CutMix on
nonclinical features" / "noise on silent frames").

The package: :mod:`~mmib.data.augment.base` (the base class, shared helpers, composition),
:mod:`~mmib.data.augment.series` (every kind; time axis), :mod:`~mmib.data.augment.image`,
:mod:`~mmib.data.augment.pipeline` (names, defaults, :func:`build_augmentation`, :class:`ModalityAugmenter`),
:mod:`~mmib.data.augment.unique` (FactorCL). The public names are gathered here.
"""

from mmib.data.augment.base import KINDS, Augmentation, Compose, Identity, RandomApply
from mmib.data.augment.image import ColorJitter, GaussianBlur, Grayscale, HFlip, ResizedCrop
from mmib.data.augment.pipeline import (
    AUGMENTATIONS,
    AugmentFn,
    ModalityAugmenter,
    build_augmentation,
    default_augmentation_config,
    make_generator,
)
from mmib.data.augment.series import Crop, GaussianNoise, Mixup, Permute, TimeDrop
from mmib.data.augment.unique import UniqueAugmentation

__all__ = [
    "AUGMENTATIONS",
    "KINDS",
    "AugmentFn",
    "Augmentation",
    "ColorJitter",
    "Compose",
    "Crop",
    "GaussianBlur",
    "GaussianNoise",
    "Grayscale",
    "HFlip",
    "Identity",
    "Mixup",
    "ModalityAugmenter",
    "Permute",
    "RandomApply",
    "ResizedCrop",
    "TimeDrop",
    "UniqueAugmentation",
    "build_augmentation",
    "default_augmentation_config",
    "make_generator",
]
