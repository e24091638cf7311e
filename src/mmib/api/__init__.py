"""The Python API for the notebook path: any registered method on arrays held in memory.

>>> import numpy as np, mmib
>>> rng = np.random.default_rng(0)
>>> z = rng.normal(size=(300, 4))
>>> X = {"a": z @ rng.normal(size=(4, 20)), "b": z @ rng.normal(size=(4, 12))}
>>> model = mmib.MultimodalModel("clip", max_epochs=3, batch_size=32, progress=False, run_dir="/tmp/mmib-doc")
>>> model = model.fit(X)
>>> model.transform(X, modalities=["a"]).shape
(300, 256)

The same configs and engine as ``mmib train`` run underneath; keyword ``overrides`` take any config key
(``{"method.objective.temperature": 0.1}``).

The package: :mod:`~mmib.api.model` (:class:`MultimodalModel`), :mod:`~mmib.api.arrays` (the input checks and
:func:`infer_spec`).
"""

from mmib.api.arrays import infer_spec
from mmib.api.model import MultimodalModel

__all__ = ["MultimodalModel", "infer_spec"]
