"""COX — Connect & Explore — for out-of-modal generalization (Huang et al., ICLR 2025; ``specs/cox.md``,
``docs/methods/cox.md``), one room per seam:

* :mod:`~mmib.methods.cox.method` — the method ``cox``: its parts (OOM learner, classifier, VIB connections, heads),
  the Method interface and the loss;
* :mod:`~mmib.methods.cox.perceptors` — the frozen perceptors of the IM modalities (``identity``, ``random_linear``,
  ``run``, ``pretrain``);
* :mod:`~mmib.methods.cox.selection` — the cached training set and the per-epoch selection (scenarios ``semi`` /
  ``unsup``, ablations);
* :mod:`~mmib.methods.cox.baselines` — the paper's baselines ``cox_random``, ``cox_erm``, ``cox_entmin``, ``cox_ssl``,
  ``cox_moco``, ``cox_aligned``.

The method registry finds the methods of :mod:`~mmib.methods.cox.method` and :mod:`~mmib.methods.cox.baselines` by
importing every module of :mod:`mmib.methods` (``mmib.methods.registry.discover_methods``); this package only gathers
their public names.
"""

from mmib.methods.cox.baselines import (
    COXERM,
    COXSSL,
    COXAligned,
    COXAlignedMethod,
    COXBaseline,
    COXEntMin,
    COXEntMinMethod,
    COXERMMethod,
    COXMoCo,
    COXMoCoMethod,
    COXRandom,
    COXRandomMethod,
    COXSSLMethod,
)
from mmib.methods.cox.method import COXMethod, VIBConnection
from mmib.methods.cox.perceptors import PERCEPTORS, FrozenPerceptor
from mmib.methods.cox.selection import (
    ABLATIONS,
    SCENARIOS,
    SEMI_ANCHOR_MODES,
    WARMUP_SELECTIONS,
    fit_linear_head,
)

__all__ = [
    "COXMethod", "VIBConnection", "FrozenPerceptor", "fit_linear_head",
    "SCENARIOS", "ABLATIONS", "PERCEPTORS", "SEMI_ANCHOR_MODES", "WARMUP_SELECTIONS",
    "COXBaseline", "COXRandomMethod", "COXERMMethod", "COXEntMinMethod", "COXSSLMethod", "COXMoCoMethod",
    "COXAlignedMethod", "COXRandom", "COXERM", "COXEntMin", "COXSSL", "COXMoCo", "COXAligned",
]
