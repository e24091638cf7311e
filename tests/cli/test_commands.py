"""mmib.cli.commands (train, demo, data list, methods) through the mmib command: errors are one line with the valid
names and exit code 2."""

import pytest

from mmib.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "method=nope"], "mmib: error: unknown method 'nope'; valid: "),
        (["train", "data=nope"], "mmib: error: unknown data 'nope'; valid: "),
        (["train", "trainer.nope=1"], "mmib: error: unknown config key 'trainer.nope'; valid: trainer.accelerator"),
        (["train", "data.views=[0,9]"], "mmib: error: mfeat: view index 9 out of range; valid: 0..5"),
        (["train", "data.view=[0]"], "mmib: error: unknown config key 'data.view'; did you mean 'data.views'? valid: "),
        (["train", "trainer.max_epochs"], "mmib: error: override 'trainer.max_epochs' is not of the form key=value"),
        (["eval", "/nonexistent/run"], "mmib: error: '/nonexistent/run' is not an mmib run folder"),
        # the method is built before the run folder is made: these fail without writing anything
        (["train", "encoder.vector.type=nope", "trainer.max_epochs=1"],
         "mmib: error: modality 'fou': unknown encoder type 'nope'; valid: cnn1d, filterbank, gru, lstm, mlp, resnet, transformer"),
        (["train", "+encoder.modalities.fuo={hidden:[8]}", "trainer.max_epochs=1"],
         "mmib: error: unknown modality under encoder.modalities for data set 'mfeat' 'fuo'; did you mean 'fou'? "
         "valid: fac, fou, kar, mor, pix, zer"),
    ],
)
def test_errors_are_one_line_exit_2(capsys, argv, message):
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert err.startswith(message), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_train_writes_checkpoint_and_data_list(capsys, tmp_path):
    code, out, _ = _run(capsys, "train", "method=clip", "data=mfeat", "trainer.max_epochs=2", f"run_dir={tmp_path}",
                        "name=t", "trainer.enable_progress_bar=false")
    assert code == 0
    assert (tmp_path / "t" / "checkpoints" / "last.ckpt").is_file()
    assert "checkpoint:" in out
    code, out, _ = _run(capsys, "data", "list")
    assert code == 0 and "mfeat" in out and "fou vector (76,)" in out
    code, out, _ = _run(capsys, "methods")
    assert code == 0 and "clip" in out


def test_demo_takes_trailing_overrides(capsys, tmp_path):
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit) as e:
        main(["demo", "--help"])
    assert e.value.code == 0
    text = " ".join(buf.getvalue().split())
    assert "KEY=VALUE" in text and "trainer.devices=2" in text
    code, _, err = _run(capsys, "demo", "--out", str(tmp_path / "demo"), "trainer.max_epochs")
    assert code == 2
    assert err == "mmib: error: override 'trainer.max_epochs' is not of the form key=value (e.g. trainer.max_epochs=5)\n"
    code, _, err = _run(capsys, "demo", "--out", str(tmp_path / "demo"), "trainer.nope=1")
    assert code == 2 and err.startswith("mmib: error: unknown config key 'trainer.nope'"), err


def test_data_list_details_builds_each_set_and_names_the_unloadable(capsys, monkeypatch, tmp_path):
    import mmib.data.registry as registry

    monkeypatch.setenv("MMIB_DATA", str(tmp_path))  # no data files here: mosi cannot load
    monkeypatch.setattr(registry, "dataset_names", lambda: ["mfeat", "mosi", "rus_sim"])
    code, out, _ = _run(capsys, "data", "list", "--details")
    assert code == 0
    assert "fou vector (76,)" in out and "classification (10" in out
    assert "(not loadable here:" in out  # mosi, and the listing went on past it
    assert "x1 vector (32,)" in out  # rus_sim, listed after the unloadable mosi
    code, out, _ = _run(capsys, "data", "list")
    assert code == 0 and "(--details)" in out
