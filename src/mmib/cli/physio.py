"""``mmib physio simulate`` and ``mmib physio preprocess``.

``simulate`` writes ``sub-XX_eeg.edf``, ``sub-XX_nirs.snirf``, ``sub-XX_events.tsv`` and ``simulation.json`` into
``--out``. ``preprocess`` reads EEG (EDF/BDF/BrainVision/FIF) and/or fNIRS (SNIRF/FIF) recordings, epochs them around
their annotations and writes one ``.npz`` in mmib's generic format (:mod:`mmib.data.loaders.generic`, so
``build_dataset("generic", path=OUT.npz)`` and ``data=generic data.path=OUT.npz`` read it): one array per modality
(``eeg``, ``fnirs``; first axis = epoch), ``y`` (condition index), ``groups`` (subject: the ``sub-<label>`` part of
the stem when every stem has one, else the recording), ``latent_<name>`` (from ``<stem>_events.tsv`` sidecars when
present) and the ``meta`` member (task, classes, latents, and per modality kind / rate / channels), plus a ``.json``
sidecar holding the same metadata with the pipeline settings and the input files. The library side of
``preprocess`` is :mod:`mmib.data.physio.recordings`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path


def register_cli(subparsers) -> None:
    """Add the ``physio`` command (``simulate``, ``preprocess``) to an argparse ``subparsers``."""
    p = subparsers.add_parser("physio", help="EEG + fNIRS simulation and preprocessing (MNE / MNE-NIRS)")
    sub = p.add_subparsers(dest="physio_command", required=True)

    s = sub.add_parser("simulate", help="simulate EEG + fNIRS recordings with ground truth; write EDF + SNIRF")
    s.add_argument("--out", required=True, type=Path, help="output folder")
    s.add_argument("--subjects", type=int, default=2, help="number of subjects (default 2)")
    s.add_argument("--trials", type=int, default=60, help="trials per subject (default 60; ~26 min per subject)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--eeg-sfreq", type=float, default=128.0)
    s.add_argument("--fnirs-sfreq", type=float, default=10.0)
    s.add_argument("--fnirs-channels", type=int, default=8, help="source-detector pairs (default 8)")
    s.add_argument("--eeg-format", choices=("edf", "bdf", "fif"), default="edf")
    s.add_argument("--fnirs-format", choices=("snirf", "fif"), default="snirf")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other simulator parameter (EEGFNIRSSimConfig field), JSON value; repeatable")  # fmt: skip
    s.set_defaults(func=_simulate)

    q = sub.add_parser("preprocess", help="epoch + features from EEG and/or fNIRS recordings into an .npz")
    q.add_argument("inputs", nargs="*", type=Path,
                   help="a BIDS data set (EEG and NIRS, through mne-bids), or a folder holding "
                        "<stem>_eeg.<edf|bdf|vhdr|set|fif> and/or <stem>_nirs.<snirf|fif|csv> files or NIRx folders "
                        "<stem>_nirs/ (paired by stem)")  # fmt: skip
    q.add_argument("--eeg", nargs="*", type=Path, default=[],
                   help="EEG recordings: EDF, BDF, BrainVision .vhdr, EEGLAB .set, FIF, TU Berlin cnt*.mat "
                        "(paired with --fnirs by order)")  # fmt: skip
    q.add_argument("--fnirs", nargs="*", type=Path, default=[],
                   help="fNIRS recordings: SNIRF, FIF, NIRx folder (or its .hdr), Hitachi .csv, TU Berlin cnt*.mat")  # fmt: skip
    q.add_argument("--out", required=True, type=Path, help="output .npz")
    q.add_argument("--representation", choices=("signal", "features"), default="features")
    q.add_argument("--conditions", default=None,
                   help="comma-separated annotation descriptions to epoch, in class order (default: all, sorted)")  # fmt: skip
    q.add_argument("--eeg-window", type=float, nargs=2, default=(-0.5, 4.0), metavar=("TMIN", "TMAX"))
    q.add_argument("--fnirs-window", type=float, nargs=2, default=(-2.0, 18.0), metavar=("TMIN", "TMAX"))
    q.add_argument("--eeg-band", type=float, nargs=2, default=(1.0, 45.0), metavar=("LOW", "HIGH"))
    q.add_argument("--fnirs-band", type=float, nargs=2, default=(0.01, 0.1), metavar=("LOW", "HIGH"))
    q.add_argument("--notch", type=float, default=None, help="EEG line-noise frequency to remove (50/60)")
    q.add_argument("--ppf", type=float, default=6.0, help="partial pathlength factor (default 6)")
    q.add_argument("--tddr", action="store_true", help="TDDR motion correction of the optical density")
    q.add_argument("--short-channel-regression", action="store_true")
    q.add_argument("--psd-method", choices=("welch", "multitaper"), default="welch")
    q.add_argument("--eeg-resample", type=float, default=None)
    q.set_defaults(func=_preprocess)


def _simulate(args: argparse.Namespace) -> int:
    from mmib.data.physio.eeg_fnirs_sim import EEGFNIRSSimConfig, simulate_eeg_fnirs
    from mmib.data.physio.io import write_simulation
    from mmib.data.physio.preprocess import PhysioInputError

    extra = {}
    for item in args.set:
        if "=" not in item:
            raise PhysioInputError(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            extra[k] = json.loads(v)
        except json.JSONDecodeError:
            extra[k] = v
    from mmib.errors import check_known

    check_known("simulator parameter (--set)", extra, [f.name for f in dataclasses.fields(EEGFNIRSSimConfig) if f.init])
    try:
        cfg = EEGFNIRSSimConfig(
            n_subjects=args.subjects, trials_per_subject=args.trials, seed=args.seed, eeg_sfreq=args.eeg_sfreq,
            fnirs_sfreq=args.fnirs_sfreq, n_fnirs_channels=args.fnirs_channels, **extra,
        )  # fmt: skip
    except TypeError as e:
        raise PhysioInputError(f"physio simulate: unknown simulator parameter ({e})") from e
    except ValueError as e:
        raise PhysioInputError(str(e)) from e
    files = write_simulation(simulate_eeg_fnirs(cfg), args.out, cfg.to_dict(), args.eeg_format, args.fnirs_format)
    for f in files:
        print(f"{args.out / f['eeg']}  {args.out / f['fnirs']}  {args.out / f['events']}")
    return 0


def _preprocess(args: argparse.Namespace) -> int:
    from mmib.data.physio.preprocess import EEGPipeline, FNIRSPipeline, PhysioInputError
    from mmib.data.physio.recordings import find_recordings, preprocess_to_npz

    recs: list[dict] = []
    from mmib.data.physio.readers import is_nirx_folder

    for item in args.inputs:
        if item.is_file() or is_nirx_folder(item):
            raise PhysioInputError(f"{item}: positional inputs are folders of recordings or BIDS data sets; pass "
                                   "single recordings with --eeg / --fnirs")  # fmt: skip
        recs.extend(find_recordings(item))
    if args.eeg or args.fnirs:
        n = max(len(args.eeg), len(args.fnirs))
        if args.eeg and args.fnirs and len(args.eeg) != len(args.fnirs):
            raise PhysioInputError(f"--eeg has {len(args.eeg)} files and --fnirs {len(args.fnirs)}; pair them 1:1")
        for i in range(n):
            e = args.eeg[i] if args.eeg else None
            f = args.fnirs[i] if args.fnirs else None
            stem = re.sub(r"_(eeg|nirs)$", "", (e or f).name.split(".")[0])
            recs.append({"stem": (e or f).with_name(stem), "eeg": e, "fnirs": f})
    if not recs:
        raise PhysioInputError("physio preprocess: give a folder of recordings, or --eeg / --fnirs files")
    eeg_cfg = EEGPipeline(l_freq=args.eeg_band[0], h_freq=args.eeg_band[1], notch=args.notch, tmin=args.eeg_window[0],
                          tmax=args.eeg_window[1], resample=args.eeg_resample, psd_method=args.psd_method)  # fmt: skip
    fnirs_cfg = FNIRSPipeline(ppf=args.ppf, l_freq=args.fnirs_band[0], h_freq=args.fnirs_band[1],
                              tmin=args.fnirs_window[0], tmax=args.fnirs_window[1],
                              motion_correction="tddr" if args.tddr else None,
                              short_channel_regression=args.short_channel_regression)  # fmt: skip
    conditions = [c.strip() for c in args.conditions.split(",")] if args.conditions else None
    try:
        arrays = preprocess_to_npz(recs, args.out, args.representation, eeg_cfg, fnirs_cfg, conditions)
    except FileNotFoundError as e:
        raise PhysioInputError(str(e)) from e
    shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items() if k != "meta")
    print(f"wrote {args.out} ({shapes}) and {args.out.with_suffix('.json')}")
    return 0
