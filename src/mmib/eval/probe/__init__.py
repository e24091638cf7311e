"""Downstream probes on frozen representations.

* ``linear``: softmax (multinomial logistic) regression trained with **cross-entropy** for classification, least
  squares for regression. This is the probe whose numbers the synergy claims depend on (FactorCL/CoMM spec D.3.1: a
  linear rule *not* trained with CE can reach 75 % on additive features of an XOR task; a CE-trained one cannot).
* ``mlp``: the papers' **4-layer MLP** predictor (3 hidden layers of ``hidden`` units + the output layer; OVA-IB
  §4 / B.2), trained with cross-entropy or MSE.

Both are trained with Adam on features standardized with train-split statistics (regression targets too), in
mini-batches (full batch when the train split is small), with early stopping on the validation loss (the best
validation state is restored) and a fixed seed; the metrics are computed on the test split. Every result names the
probe that produced it (:data:`PROBE_DESCRIPTIONS`).

The package: :mod:`~mmib.eval.probe.config` (probe kinds, options, results), :mod:`~mmib.eval.probe.fit` (one probe),
:mod:`~mmib.eval.probe.batched` (many linear probes trained together).
"""

from mmib.eval.metrics import classification_metrics, regression_metrics
from mmib.eval.probe.batched import fit_linear_probes
from mmib.eval.probe.config import PROBE_DESCRIPTIONS, PROBES, TASKS, ProbeConfig, ProbeResult, torch_threads
from mmib.eval.probe.fit import fit_probe, train_probe

__all__ = ["PROBES", "PROBE_DESCRIPTIONS", "TASKS", "ProbeConfig", "ProbeResult", "classification_metrics",
           "fit_linear_probes", "fit_probe", "regression_metrics", "torch_threads", "train_probe"]
