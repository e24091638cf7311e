"""The EEG + fNIRS study's analyses as evaluation protocols (suite ``eeg-fnirs``; issue 20, spec parts C and D.5).

Registered on import (the suite lists this module under ``imports:``):

* ``eeg_fnirs_ceiling`` — the **hand-made-feature ceiling**: for every ground-truth latent, the best simple features
  (:mod:`mmib.data.physio.features`: time-resolved EEG band envelopes, gamma-burst peak, ERP latencies; fitted fNIRS
  onsets, channel-weighted time to peak, amplitudes; for ``synergy`` = (G + A) mod 2 also the product of the G and A
  decoders' scores and the XOR of their decisions), on the run's own split (held-out subjects): a linear / logistic
  probe per candidate feature set fitted on train, its regularization and the candidate chosen on val, scored on
  test. Rows ``ceiling/<latent>`` (all features), ``ceiling-eeg/<latent>``, ``ceiling-fnirs/<latent>`` (one
  modality's features) and ``candidate/<set>/<latent>`` (every candidate). It reads the data, not the method: every
  method's column shows the same numbers on the same split.
* ``eeg_fnirs_checks`` — the **validation of an R/U/S model** (methods with components ``R_eeg, R_fnirs, U_eeg,
  U_fnirs, S``; others are skipped with a note): every off-target "does not decode" check (Z_R_eeg → k, G;
  Z_R_fnirs → A; Z_U_eeg → e, A; Z_U_fnirs → e, k; Z_S → e, k, A, G) beside its **positive controls** — the same
  factor probed from that modality's encoder output ``H`` (``method.hidden(batch)``, when the method has it) and from
  its hand-made features; a check whose factor is decodable from neither (control below chance + 20 points, R² 0.2)
  is marked uninformative. ``pass``: within 10 points of chance (R² ≤ 0.1).
* ``eeg_fnirs_done`` — issue 20's Done-when comparisons (value, threshold, pass): Z_S → synergy ≥ 80 %, ≥ ceiling −
  7 points, ≥ a linear probe on [Z_R_eeg, Z_R_fnirs, Z_U_eeg, Z_U_fnirs] + 10 points; Z_S → τ R² ≥ 0.8 × ceiling;
  Z_R_m → e within 5 points of its modality's ceiling; every informative off-target pair within tolerance.
* ``eeg_fnirs_analyses`` — what the former ``benchmarks/eeg_fnirs_study.py`` computed besides the probe matrix: MLP
  probes (4 layers) of the synergy-type targets, and for R/U/S models the Spearman ρ of each component's norm with
  A (‖Z_U_fnirs‖ should follow A), cross-modal retrieval with the R heads and the mean |cos| between components.

Every probe here uses the same split and the same probe family (``linear_probe``: standardized features, logistic
regression or ridge from scikit-learn with the regularization chosen on val) for components, encoder outputs and
hand-made features, so a component's number stands beside what the data allow. Latents other than ``e`` and ``k``
are expressed on task trials only and are probed there (``e = 1``, every split).

Cut by protocol: :mod:`.probes` (the latents, the probe family, the split and the method's arrays, shared by all),
:mod:`.ceiling` (``eeg_fnirs_ceiling``), :mod:`.checks` (``eeg_fnirs_checks``, ``eeg_fnirs_done``),
:mod:`.analyses` (``eeg_fnirs_analyses``). Importing this package registers the four protocols.
"""

from mmib.bench.study_eeg_fnirs.analyses import eeg_fnirs_analyses
from mmib.bench.study_eeg_fnirs.ceiling import eeg_fnirs_ceiling
from mmib.bench.study_eeg_fnirs.checks import eeg_fnirs_checks, eeg_fnirs_done

__all__ = ["eeg_fnirs_analyses", "eeg_fnirs_ceiling", "eeg_fnirs_checks", "eeg_fnirs_done"]
