"""Physiological data: the EEG + fNIRS simulator with R/U/S ground truth, MNE / MNE-NIRS preprocessing, and
cardio-respiratory data (pyphysio's real recording and a neurokit2 simulator).

Modules (all import MNE, MNE-NIRS, nilearn and neurokit2 lazily, so ``import mmib`` works without the ``physio``
extra):

* :mod:`~mmib.data.physio.eeg_fnirs_sim` — :func:`simulate_eeg_fnirs`: MNE Raw objects (EEG in volts on a 10-20
  montage; fNIRS raw intensities at two wavelengths) plus per-trial latents; its EEG in
  :mod:`~mmib.data.physio.eeg_sim`, its fNIRS forward model (HRF, optodes, scalp field, inverse MBLL) in
  :mod:`~mmib.data.physio.fnirs_forward`, its signal primitives in :mod:`~mmib.data.physio.sim_signals`.
* :mod:`~mmib.data.physio.readers` — readers (EDF/BDF/BrainVision/FIF, SNIRF, NIRx, Hitachi, BIDS; TU Berlin in
  :mod:`~mmib.data.physio.tuberlin`), their shared errors and :func:`mne_read` in :mod:`~mmib.data.physio.read_base`.
* :mod:`~mmib.data.physio.preprocess` — one recording into paired epochs, by modality:
  :mod:`~mmib.data.physio.preprocess_fnirs` (OD → Beer–Lambert → band-pass → epochs → HbO/HbR features),
  :mod:`~mmib.data.physio.preprocess_eeg` (filtering, epochs, ERP features, band powers), and the shared events
  from annotations (:mod:`~mmib.data.physio.preprocess_events`).
* :mod:`~mmib.data.physio.targets` — reconstruction targets of the R/U/S method (band powers, band envelopes and
  their peaks, haemodynamic targets) and :mod:`~mmib.data.physio.augment` — the physiological augmentations
  (time mask, channel dropout, band SNR, HRF amplitude and delay) with the R/U/S defaults.
* :mod:`~mmib.data.physio.io` — EDF/SNIRF writers, events tables, pyphysio's data files (read by path).
* :mod:`~mmib.data.physio.cardio` — windowed ECG / BVP / respiration (/ EDA), real and simulated.
* :mod:`~mmib.data.physio.datasets` — registered data sets ``eeg_fnirs_sim``, ``cardio_pyphysio``, ``cardio_sim``,
  ``fnirs_pyphysio``.
* :mod:`~mmib.data.physio.recordings` — the recordings of a folder (paired by stem, or BIDS) preprocessed into mmib's
  generic ``.npz`` (what ``mmib physio preprocess``, :mod:`mmib.cli.physio`, runs).

See ``docs/guide/eeg-fnirs.md``.
"""
