"""mmib.data.augment.image: SimCLR's image augmentations keep the range and shape; grayscale, blur and a full
crop against closed forms / an independent reference."""

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from mmib.data.augment import (
    ColorJitter,
    GaussianBlur,
    Grayscale,
    ResizedCrop,
    build_augmentation,
    make_generator,
)
from mmib.errors import MMIBError


def test_image_ops_stay_in_range():
    x = torch.rand(4, 3, 16, 16)
    for item in ({"name": "color_jitter"}, {"name": "grayscale"}, {"name": "gaussian_blur"},
                 {"name": "resized_crop"}, {"name": "hflip"}):
        out = build_augmentation("image", [item])(x, make_generator(0))
        assert out.shape == x.shape and float(out.min()) >= -1e-5 and float(out.max()) <= 1 + 1e-5
    gray = build_augmentation("image", [{"name": "grayscale"}])(x, make_generator(0))
    assert torch.allclose(gray[:, 0], gray[:, 1])
    torch.testing.assert_close(build_augmentation("image", [{"name": "hflip"}])(x), x.flip(-1))


def test_grayscale_is_the_luma():
    x = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    out = Grayscale("image")(x)
    for c in range(3):
        torch.testing.assert_close(out[:, c], luma)
    one = torch.rand(2, 2, 4, 4)  # not RGB: the channel mean
    torch.testing.assert_close(Grayscale("image")(one)[:, 1], one.mean(1))


def test_gaussian_blur_matches_scipy_and_keeps_a_constant_image():
    x = torch.rand(2, 3, 12, 12, dtype=torch.float64)
    blur = GaussianBlur("image", sigma=(1.0, 1.0), reference_size=12)  # sigma 1 px at this size, radius 3
    out = blur(x, make_generator(0)).numpy()
    for n in range(2):
        for c in range(3):
            ref = gaussian_filter(x[n, c].numpy(), sigma=1.0, mode="nearest", truncate=3.0)
            np.testing.assert_allclose(out[n, c], ref, rtol=0, atol=1e-10)
    const = torch.full((1, 3, 9, 9), 0.37)
    torch.testing.assert_close(GaussianBlur("image")(const, make_generator(0)), const)
    with pytest.raises(MMIBError, match="gaussian_blur: bad sigma range"):
        GaussianBlur("image", sigma=(2.0, 1.0))


def test_resized_crop_of_the_whole_image_is_the_identity():
    x = torch.rand(3, 3, 8, 10)
    out = ResizedCrop("image", scale=(1.0, 1.0), ratio=(1.0, 1.0))(x, make_generator(0))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)
    with pytest.raises(MMIBError, match="resized_crop: bad scale"):
        ResizedCrop("image", scale=(0.5, 1.5))


def test_color_jitter_factors_and_gray_pixels():
    x = torch.rand(20, 3, 6, 6) * 0.5
    out = ColorJitter("image", brightness=0.4, contrast=0.0, saturation=0.0, hue=0.0)(x, make_generator(0))
    ratio = out / x  # brightness only: one factor per sample in [0.6, 1.4] (no clamping below 0.5 * 1.4)
    f = ratio.flatten(1)
    torch.testing.assert_close(f, f[:, :1].expand_as(f))
    assert float(f.min()) >= 0.6 - 1e-6 and float(f.max()) <= 1.4 + 1e-6 and float(f.std()) > 0
    gray = torch.rand(5, 1, 6, 6).expand(5, 3, 6, 6).contiguous()  # no chroma: hue and saturation leave it alone
    hue_sat = ColorJitter("image", brightness=0.0, contrast=0.0, saturation=0.4, hue=0.5)(gray, make_generator(1))
    torch.testing.assert_close(hue_sat, gray, atol=1e-5, rtol=0)
    with pytest.raises(MMIBError, match=r"hue in \[0, 0.5\]"):
        ColorJitter("image", hue=0.6)
