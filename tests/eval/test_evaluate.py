"""mmib.eval.evaluate: evaluate() runs the protocols on a data set whose information structure is known,
through the Method interface only, and writes the JSON results, the Markdown report and the plots."""

import matplotlib.image as mpimg

from mmib.eval.evaluate import evaluate
from mmib.eval.report import load_results, render_comparison

from .conftest import IdentityMethod

FAST = {"max_epochs": 60, "patience": 10}


def _png_ok(path):
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50


def test_evaluate_writes_json_report_and_plots(latent_dm, tmp_path):
    method = IdentityMethod(latent_dm.spec)
    protocols = [{"probe": {"probe_options": FAST}}, {"subsets": {"sizes": [1], "probe_options": FAST}},
                 {"retrieval": {"directions": ["a->b"]}}, {"plots": {"max_points": 120}}]
    r = evaluate(method, latent_dm, protocols, out_dir=tmp_path / "e1", seed=3, progress=False)
    assert r["complete"] and r["seed"] == 3 and set(r["timings"]) >= {"probe", "subsets", "retrieval", "plots"}
    loaded = load_results(tmp_path / "e1")
    assert loaded["protocols"]["probe"]["rows"][0]["metrics"] == r["protocols"]["probe"]["rows"][0]["metrics"]
    assert loaded["versions"]["torch"] and "git_commit" in loaded
    md = (tmp_path / "e1" / "report.md").read_text()
    assert "| representation | probe | dim | accuracy |" in md and "![tsne](plots/tsne.png)" in md
    _png_ok(tmp_path / "e1" / "plots" / "tsne.png")
    assert "training curves skipped" in " ".join(r["protocols"]["plots"]["notes"])  # no run folder here
    cmp = render_comparison([r, r], ["x", "y"])
    assert "## probe: accuracy" in cmp and "| row | x | y |" in cmp




def test_evaluate_records_cpu_seconds_by_part(latent_dm, tmp_path):
    """``cpu_seconds``: each protocol's thread and the figure thread, inside the whole evaluation's CPU time."""
    method = IdentityMethod(latent_dm.spec)
    protocols = [{"probe": {"probe_options": FAST}}, {"subsets": {"sizes": [1], "probe_options": FAST}},
                 {"plots": {"max_points": 120}}]
    for jobs in (1, 2):
        r = evaluate(method, latent_dm, protocols, out_dir=tmp_path / f"j{jobs}", seed=0, progress=False, jobs=jobs)
        cpu = r["cpu_seconds"]
        assert set(cpu["protocols"]) == {"probe", "subsets", "plots"}
        assert all(v >= 0 for v in cpu["protocols"].values()) and cpu["protocols"]["probe"] > 0
        assert cpu["figures"] > 0  # the t-SNE map is drawn in the figure thread
        # every part is CPU time of a thread of this process during the evaluation (clock steps: 10 ms)
        assert sum(cpu["protocols"].values()) + cpu["figures"] <= cpu["evaluate"] + 0.05
        assert cpu["evaluate"] <= cpu["process"]
        assert load_results(tmp_path / f"j{jobs}")["cpu_seconds"] == cpu
