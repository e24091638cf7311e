"""``mmib eval`` on a trained checkpoint of the 6-view UCI digits: the subset table (all 2^6 − 1 subsets), the
retrieval table (each view from the others, with chance), the plots (valid PNGs), a report that renders, and
``mmib report`` rendering one run and comparing two."""

import json

import matplotlib.image as mpimg
import pytest

from mmib.cli import main

VIEWS = ["fou", "fac", "kar", "pix", "zer", "mor"]
TINY = ["method.representation_dim=16", "method.embed_dim=8", "encoder.vector.hidden=[16]", "data.batch_size=256",
        "trainer.max_epochs=1", "trainer.enable_progress_bar=false"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalcli")
    assert main(["train", "method=clip", "data=mfeat", *TINY, f"run_dir={root}", "name=clip6"]) == 0
    return root / "clip6"


def _png_opens(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50


def test_eval_writes_subset_and_retrieval_tables_and_plots(trained_run, capsys):
    code = main(["eval", str(trained_run), "--protocols", "probe,subsets,retrieval,plots", "--probe", "linear",
                 "--option", "probe.probe_options={max_epochs: 30}", "--option", "subsets.probe_options={max_epochs: 30}",
                 "--option", "plots.max_points=300", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    res = json.loads((trained_run / "results.json").read_text())
    assert res["complete"] and set(res["protocols"]) == {"probe", "subsets", "retrieval", "plots"}
    sub = res["protocols"]["subsets"]
    method_rows = [r for r in sub["rows"] if r["source"] == "method"]
    assert len(method_rows) == 2 ** 6 - 1
    assert {r["size"] for r in method_rows} == {1, 2, 3, 4, 5, 6}
    assert len({tuple(r["subset"]) for r in method_rows}) == 2 ** 6 - 1
    assert all(0.0 <= r["metrics"]["accuracy"] <= 1.0 for r in method_rows)
    ret = res["protocols"]["retrieval"]
    rows = [r for r in ret["rows"] if r["source"] == "method"]
    assert sorted(r["candidate"] for r in rows) == sorted(VIEWS)
    for r in rows:
        assert set(r["metrics"]) >= {"mAP", "R@1", "R@5", "R@10", "MRR", "median_rank"}
        assert r["chance"]["R@1"] == pytest.approx(1 / r["n_candidates"])
    plots = {**sub.get("plots", {}), **ret.get("plots", {}), **res["protocols"]["plots"].get("plots", {})}
    assert {"subsets_heatmap", "retrieval", "tsne", "training_curves"} <= set(plots)
    for rel in plots.values():
        _png_opens(trained_run / rel)
    report = (trained_run / "report.md").read_text()
    assert "subsets" in report and "retrieval" in report and "R@1" in report
    for rel in plots.values():
        assert f"({rel})" in report, f"report.md does not show {rel}"
    assert "2^M" in out or "subsets" in out
    cpu = res["cpu_seconds"]  # by part: load_run from evaluate_run, the rest from evaluate
    assert cpu["load_run"] > 0 and set(cpu["protocols"]) == set(res["protocols"])
    assert cpu["load_run"] + cpu["evaluate"] <= cpu["process"]


def test_report_renders_one_run_and_compares_two(trained_run, tmp_path, capsys):
    assert main(["eval", str(trained_run), "--protocols", "probe", "--probe", "linear", "--out",
                 str(tmp_path / "other"), "--seed", "1", "--option", "probe.probe_options={max_epochs: 30}",
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path / "other"), "--out", str(tmp_path / "one.md")]) == 0
    assert "probe" in (tmp_path / "one.md").read_text()
    assert main(["report", str(trained_run), str(tmp_path / "other"), "--out", str(tmp_path / "cmp.md")]) == 0
    cmp = (tmp_path / "cmp.md").read_text()
    assert "method/concat/linear" in cmp and cmp.count("|") > 10


def test_eval_on_a_checkpoint_file_uses_that_checkpoint(trained_run, tmp_path, capsys):
    """`mmib eval PATH.ckpt` reloads the run of the checkpoint (its config and splits) with *that* checkpoint's
    weights: a copy of the run whose second checkpoint has every weight zeroed (constant representations) probes at
    chance, the trained one far above."""
    import shutil

    import torch

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    from mmib.utils.checkpoint import add_digest

    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    ckpt["state_dict"] = {k: torch.zeros_like(v) for k, v in ckpt["state_dict"].items()}
    torch.save(add_digest(ckpt), run / "checkpoints" / "zeroed.ckpt")  # an edited checkpoint needs a new digest
    accs = {}
    for name in ("last", "zeroed"):
        out = tmp_path / f"eval_{name}"
        code = main(["eval", str(run / "checkpoints" / f"{name}.ckpt"), "--protocols", "probe", "--probe", "linear",
                     "--option", "probe.representation=rep:fou", "--option", "probe.baseline_raw=false",
                     "--option", "probe.probe_options={max_epochs: 40}", "--out", str(out), "--no-progress"])
        assert code == 0, capsys.readouterr().out
        res = json.loads((out / "results.json").read_text())
        assert res["checkpoint"] == str(run / "checkpoints" / f"{name}.ckpt") and res["run_dir"] == str(run)
        (row,) = res["protocols"]["probe"]["rows"]
        assert row["id"] == "method/rep:fou/linear"  # the singular option reached the probe protocol
        accs[name] = (row["metrics"]["accuracy"], row["chance"]["accuracy"])
    assert accs["last"][0] > 3 * accs["last"][1] and accs["zeroed"][0] == pytest.approx(accs["zeroed"][1], abs=0.05)


def test_eval_reuses_representations_of_the_same_checkpoint(trained_run, monkeypatch):
    """A second ``mmib eval`` of the same checkpoint reads the representations from <run>/cache/representations
    (same tables, no extraction); an unreadable cache file is extracted again; --no-cache ignores the cache."""
    import shutil

    from mmib.eval.protocols import context as protocols

    shutil.rmtree(trained_run / "cache", ignore_errors=True)  # other tests of this module evaluated the run too
    args = ["eval", str(trained_run), "--protocols", "probe", "--probe", "linear", "--no-progress",
            "--option", "probe.probe_options={max_epochs: 20}", "--option", "probe.baseline_raw=false"]
    assert main(args) == 0
    first = json.loads((trained_run / "results.json").read_text())["protocols"]["probe"]["rows"]
    cache = sorted((trained_run / "cache" / "representations").glob("*.npz"))
    assert len(cache) == 3  # concat of train, val, test
    calls = []
    real = protocols.extract_split
    monkeypatch.setattr(protocols, "extract_split", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    assert main(args) == 0
    assert calls == []
    second = json.loads((trained_run / "results.json").read_text())["protocols"]["probe"]["rows"]
    assert [r["metrics"] for r in second] == [r["metrics"] for r in first]
    cache[0].write_bytes(b"not an npz file")
    assert main(args) == 0
    assert len(calls) == 1
    assert main([*args, "--no-cache"]) == 0
    assert len(calls) == 4


def test_eval_reads_raw_probes_back_unless_no_cache(trained_run, tmp_path, monkeypatch):
    """The raw-feature probes go to $MMIB_CACHE_DIR/probes and are read back by the next ``mmib eval`` (same rows);
    --no-cache neither reads nor writes them."""
    monkeypatch.setenv("MMIB_CACHE_DIR", str(tmp_path / "cache"))
    args = ["eval", str(trained_run), "--protocols", "probe", "--probe", "linear", "--no-progress",
            "--option", "probe.probe_options={max_epochs: 20}", "--out"]
    assert main([*args, str(tmp_path / "off"), "--no-cache"]) == 0
    off = json.loads((tmp_path / "off" / "results.json").read_text())
    assert "probe_cache" not in off and not (tmp_path / "cache").exists()
    runs = []
    for name in ("first", "second"):
        assert main([*args, str(tmp_path / name)]) == 0
        runs.append(json.loads((tmp_path / name / "results.json").read_text()))
    assert [(r["probe_cache"]["hits"], r["probe_cache"]["misses"]) for r in runs] == [(0, 1), (1, 0)]
    assert len(list((tmp_path / "cache" / "probes").rglob("*.json"))) == 1
    rows = [r["protocols"]["probe"]["rows"] for r in (off, *runs)]
    assert rows[0] == rows[1] == rows[2] and [row["source"] for row in rows[0]] == ["method", "raw"]


def test_eval_jobs_gives_the_same_tables_as_one_after_the_other(trained_run, tmp_path):
    """``mmib eval --jobs 2`` (the protocols side by side in threads) and ``--jobs 1`` (one after the other): every
    value of every protocol's rows the same, on a trained run of the 6-view digits."""
    args = ["eval", str(trained_run), "--protocols", "probe,subsets,retrieval,plots", "--no-progress", "--no-cache",
            "--option", "probe.probe_options={max_epochs: 25}", "--option", "subsets.probe_options={max_epochs: 25}",
            "--option", "plots.max_points=200", "--option", "plots.curves=false", "--out"]
    got = {}
    for jobs in ("1", "2"):
        assert main([*args, str(tmp_path / jobs), "--jobs", jobs]) == 0
        r = json.loads((tmp_path / jobs / "results.json").read_text())
        assert r["jobs"] == int(jobs)
        got[jobs] = {k: json.dumps({f: v for f, v in p.items() if f != "seconds"}, sort_keys=True)
                     for k, p in r["protocols"].items()}
    assert got["1"] == got["2"] and list(got["1"]) == ["probe", "subsets", "retrieval", "plots"]
