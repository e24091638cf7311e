"""``mmib physio simulate`` / ``preprocess``: the output is mmib's generic format (it loads with
``build_dataset("generic")`` with rates, channels, latents and subject groups, and ``rus`` builds on it), the
own-recordings chain of docs/guide/eeg-fnirs.md runs end to end, and the input errors name the problem."""

import argparse
import json
import shlex
from pathlib import Path

import numpy as np
import pytest

from mmib.cli import main
from mmib.cli import physio as physio_cli
from mmib.data.physio.preprocess import PhysioInputError, read_eeg, read_fnirs
from mmib.data.registry import build_dataset
from mmib.errors import UnknownNameError

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "guide" / "eeg-fnirs.md"
SIM_LATENTS = {"e": 2, "k": 2, "A": 2, "G": 2, "synergy": 2, "subject": 3, "tau": 0, "efficiency": 0, "t0": 0,
               "A_value": 0, "G_value": 0, "hbo_peak_um": 0}  # fmt: skip


def _run(argv):
    parser = argparse.ArgumentParser()
    physio_cli.register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """3 simulated subjects × 14 trials (≈ 350 s each: the 0.01 Hz high-pass needs ~330 s) on disk."""
    root = tmp_path_factory.mktemp("physio_cli")
    out = root / "my_study"
    assert _run(["physio", "simulate", "--out", str(out), "--subjects", "3", "--trials", "14", "--seed", "1"]) == 0
    return root


@pytest.fixture(scope="module")
def signal_npz(study):
    npz = study / "my_study_sig.npz"
    assert _run(["physio", "preprocess", str(study / "my_study"), "--out", str(npz), "--representation", "signal"]) == 0
    return npz


def test_simulate_writes_edf_snirf_and_events(study):
    names = sorted(p.name for p in (study / "my_study").iterdir())
    assert names == ["simulation.json"] + [f"sub-0{i}_{k}" for i in (1, 2, 3)
                                           for k in ("eeg.edf", "events.tsv", "nirs.snirf")]  # fmt: skip


def test_features_file_is_the_generic_format(study):
    npz = study / "feat.npz"
    assert _run(["physio", "preprocess", str(study / "my_study"), "--out", str(npz)]) == 0
    d = np.load(npz)
    assert d["eeg"].shape == (42, 208) and d["fnirs"].shape == (42, 48)
    assert d["groups"].tolist() == [0] * 14 + [1] * 14 + [2] * 14  # subjects sub-01..03
    np.testing.assert_array_equal(d["y"], d["latent_e"])  # conditions sorted: rest = 0, task = 1
    assert not any(k.startswith("latents__") for k in d)
    assert "latent_tau" in d and "latent_hbo_peak_time" not in d  # NaN on rest trials → left out
    ds = build_dataset("generic", path=str(npz))
    assert ds.n == 42 and [m.kind for m in ds.spec.modalities] == ["vector", "vector"]
    assert ds.spec.task == "classification" and ds.spec.n_classes == 2
    assert dict(ds.spec.latents) == SIM_LATENTS
    np.testing.assert_array_equal(ds.latents["k"].numpy(), d["latent_k"])
    sidecar = json.loads(npz.with_suffix(".json").read_text())
    assert sidecar["conditions"] == ["rest", "task"] and sidecar["groups"] == "subject"
    assert len(sidecar["modalities"]["eeg"]["feature_names"]) == 208
    assert sidecar["latents_left_out"] == {"hbo_peak_time": "NaN/n/a on some epochs"}
    assert sidecar["eeg_pipeline"]["l_freq"] == 1.0 and len(sidecar["recordings"]) == 3
    assert not list(study.glob(".*partial*"))  # the temporary file of the atomic write is gone


def test_signal_file_carries_rates_channels_and_builds_rus(signal_npz, capsys):
    from mmib.methods.registry import build_method

    ds = build_dataset("generic", path=str(signal_npz))
    eeg, fnirs = ds.spec.modality("eeg"), ds.spec.modality("fnirs")
    assert eeg.kind == fnirs.kind == "signal"
    assert (eeg.shape, eeg.rate, eeg.channels[0]) == ((16, 577), 128.0, "Fp1")
    assert (fnirs.shape, fnirs.rate, fnirs.channels[:2]) == ((16, 201), 10.0, ("S1_D1 hbo", "S1_D1 hbr"))
    assert dict(ds.spec.latents) == SIM_LATENTS and sorted(np.unique(ds.groups).tolist()) == [0, 1, 2]
    m = build_method("rus", ds.spec, {})
    assert m.targets == {"eeg": "band_envelope_peak", "fnirs": "hemodynamic"}  # rus defaults (docs/methods/rus.md)
    assert main(["data", "check", "--format", "generic", str(signal_npz)]) == 0
    out = capsys.readouterr().out
    assert "eeg: signal (16, 577), 128 Hz" in out and "fnirs: signal (16, 201), 10 Hz" in out


def test_fnirs_only_with_one_condition(study):
    sig = study / "one.npz"
    _run(["physio", "preprocess", "--fnirs", str(study / "my_study" / "sub-01_nirs.snirf"), "--out", str(sig),
          "--representation", "signal", "--conditions", "task"])  # fmt: skip
    d = np.load(sig)
    assert set(d) >= {"fnirs", "y", "groups", "meta"} and "eeg" not in d and np.all(d["y"] == 0)
    ds = build_dataset("generic", path=str(sig))
    assert [m.name for m in ds.spec.modalities] == ["fnirs"] and ds.spec.modality("fnirs").rate == 10.0


# the commands of docs/guide/eeg-fnirs.md, "Decompose your own recordings", with tiny sizes appended
GUIDE_COMMANDS = [
    "mmib physio preprocess my_study/ --out my_study_sig.npz --representation signal",
    "mmib data check --format generic my_study_sig.npz",
    "mmib train method=rus data=generic data.path=my_study_sig.npz data.split_by=group name=rus-my_study",
    "mmib eval runs/rus-my_study --protocols probe,info_probe --representation components",
]
TINY = {
    "train": ["trainer.max_epochs=1", "data.batch_size=8", "method.hidden_dim=16", "method.component_dim=8",
              "method.head_hidden=16", "method.n_heads=2", "encoder.signal.channels=[8,8]",
              "trainer.enable_progress_bar=false"],
    "eval": ["--probe", "linear", "--option", "info_probe.latents=[e,k,A,tau]", "--no-progress"],
}  # fmt: skip


def test_own_recordings_chain_simulate_preprocess_train_eval(study, signal_npz, monkeypatch, capsys):
    """Smoke test of the guide: preprocess → data check → train rus (subject-wise split) → eval (probes)."""
    guide = " ".join(GUIDE.read_text().split())
    monkeypatch.chdir(study)
    for cmd in GUIDE_COMMANDS:
        assert cmd in guide, f"docs/guide/eeg-fnirs.md no longer shows: {cmd}"
        argv = shlex.split(cmd)[1:]
        if argv[0] == "physio":
            continue  # done by the signal_npz fixture, with the same arguments
        code = main(argv + TINY.get(argv[0], []))
        assert code == 0, capsys.readouterr().err
    run = study / "runs" / "rus-my_study"
    res = json.loads((run / "results.json").read_text())
    assert res["complete"] and set(res["protocols"]) == {"probe", "info_probe"}
    matrix = res["protocols"]["info_probe"]["matrix"]
    for c in ("R_eeg", "R_fnirs", "U_eeg", "U_fnirs", "S"):
        assert f"component:{c}" in matrix["representations"]
    assert matrix["latents"] == ["e", "k", "A", "tau", "y"]
    values = np.array(matrix["values"], dtype=float)
    assert np.isfinite(values).all()
    probe_reps = {r["representation"] for r in res["protocols"]["probe"]["rows"] if r["source"] == "method"}
    assert {"component:R_eeg", "component:S"} <= probe_reps
    cfg = (run / "config.yaml").read_text()
    assert "split_by: group" in cfg
    # the guide's Python snippet (probe a task-only latent on task trials) runs as written
    text = GUIDE.read_text()
    section = text[text.index("## Decompose your own recordings"):]
    snippet = section[section.index("```python") + len("```python"): section.index("```", section.index("```python") + 3)]
    capsys.readouterr()
    exec(compile(snippet, str(GUIDE), "exec"), {})
    assert 0.0 <= float(capsys.readouterr().out.strip().splitlines()[-1]) <= 1.0
    # subject-wise: no subject on two sides of the split
    from mmib.runs import load_run

    _, _, dm = load_run(run)
    ds = dm.dataset
    sides = [set(ds.groups[dm.indices[s]].tolist()) for s in ("train", "val", "test")]
    assert all(sides) and not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])


def test_input_errors_name_the_problem(tmp_path, study):
    with pytest.raises(FileNotFoundError, match="nope.edf"):
        read_eeg(tmp_path / "nope.edf")
    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    with pytest.raises(PhysioInputError, match="unsupported extension '.txt'"):
        read_eeg(bad)
    with pytest.raises(PhysioInputError, match="unsupported extension"):
        read_fnirs(bad)
    with pytest.raises(PhysioInputError, match="no recordings named"):
        _run(["physio", "preprocess", str(tmp_path), "--out", str(tmp_path / "o.npz")])
    with pytest.raises(UnknownNameError, match=r"unknown simulator parameter \(--set\) 'bogus'"):
        _run(["physio", "simulate", "--out", str(tmp_path / "s"), "--set", "bogus=1"])
    with pytest.raises(PhysioInputError, match=r"--out .*o\.h5: expected a file name ending in \.npz"):
        _run(["physio", "preprocess", "--fnirs", str(study / "my_study" / "sub-01_nirs.snirf"),
              "--out", str(tmp_path / "o.h5")])  # fmt: skip


def test_missing_condition_is_named(realistic_subjects):
    from mmib.data.physio.preprocess import preprocess_recording

    with pytest.raises(PhysioInputError, match="'stimulus'"):
        preprocess_recording(realistic_subjects[0].eeg, None, conditions=["stimulus"])


def test_explicit_bdf_and_fif_files_to_rus(tmp_path, monkeypatch, capsys):
    """The guide's format-by-format path, reduced: BDF EEG + FIF fNIRS given file by file → generic .npz → rus."""
    guide = " ".join(GUIDE.read_text().split())
    cmd = ("mmib physio preprocess --eeg s1.bdf s2.bdf --fnirs s1_nirs.fif s2_nirs.fif --out x.npz "
           "--representation signal")  # fmt: skip
    assert cmd in guide, f"docs/guide/eeg-fnirs.md no longer shows: {cmd}"
    monkeypatch.chdir(tmp_path)
    assert main(["physio", "simulate", "--out", "sim", "--subjects", "3", "--trials", "14", "--seed", "2",
                 "--eeg-format", "bdf", "--fnirs-format", "fif"]) == 0  # fmt: skip
    eeg = sorted(str(p) for p in Path("sim").glob("*_eeg.bdf"))
    fnirs = sorted(str(p) for p in Path("sim").glob("*_nirs.fif"))
    assert len(eeg) == len(fnirs) == 3
    assert main(["physio", "preprocess", "--eeg", *eeg, "--fnirs", *fnirs, "--out", "x.npz",
                 "--representation", "signal"]) == 0  # fmt: skip
    assert main(["data", "check", "--format", "generic", "x.npz"]) == 0
    train = "train method=rus data=generic data.path=x.npz data.split_by=group name=rus-x"
    assert f"mmib {train}" in guide
    code = main(shlex.split(train) + TINY["train"] + [f"run_dir={tmp_path / 'runs'}"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "runs" / "rus-x" / "checkpoints" / "last.ckpt").exists()
    d = np.load("x.npz", allow_pickle=True)
    assert d["eeg"].shape[0] == d["fnirs"].shape[0] == 42 and sorted(set(d["groups"].tolist())) == [0, 1, 2]
