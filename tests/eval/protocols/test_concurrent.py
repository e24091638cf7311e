"""mmib.eval.protocols.concurrent (evaluate(jobs=...)): the protocols side by side in threads give the tables of one
after the other (every value), an error still names its protocol and leaves no results.json, and a protocol not
marked concurrent runs alone."""

import json
import threading
import time

import pytest
import torch

from mmib.errors import MMIBError
from mmib.eval.evaluate import evaluate
from mmib.eval.protocols import PROTOCOLS, Protocol
from mmib.eval.protocols.concurrent import check_jobs, default_jobs

from ..conftest import IdentityMethod

FAST = {"max_epochs": 40, "patience": 10}
ALL = [{"probe": {"probes": ["linear", "mlp"], "probe_options": FAST}},
       {"subsets": {"probe_options": FAST}},
       {"retrieval": {"directions": ["a->b", "a+b->c"]}},
       {"info_probe": {"probe_options": FAST}},
       {"plots": {"max_points": 120}}]


def _values(r):
    """Every number of every protocol's rows (and the info_probe matrix), by protocol."""
    return {name: json.dumps({k: v for k, v in p.items() if k != "seconds"}, sort_keys=True)
            for name, p in r["protocols"].items()}


def test_side_by_side_gives_every_value_of_one_after_the_other(latent_dm, tmp_path):
    method = IdentityMethod(latent_dm.spec)
    torch.manual_seed(0)
    one = evaluate(method, latent_dm, ALL, out_dir=tmp_path / "one", seed=1, progress=False, jobs=1)
    torch.manual_seed(5)  # the global generator's state plays no part
    two = evaluate(method, latent_dm, ALL, out_dir=tmp_path / "two", seed=1, progress=False, jobs=3)
    assert one["jobs"] == 1 and two["jobs"] == 3
    assert list(two["protocols"]) == list(one["protocols"]) == ["probe", "subsets", "retrieval", "info_probe", "plots"]
    assert _values(two) == _values(one)
    assert len(one["protocols"]["subsets"]["rows"]) >= 7 and one["protocols"]["info_probe"]["rows"]
    for r in (one, two):
        out = r["out_dir"]
        assert json.loads(open(f"{out}/results.json").read())["complete"]
        assert set(r["protocols"]["plots"]["plots"]) >= {"tsne"}


def _register(name, run, concurrent):
    PROTOCOLS.add(Protocol(name, run, concurrent=concurrent))


@pytest.fixture
def extra_protocols():
    added = []

    def add(name, run, concurrent=True):
        _register(name, run, concurrent)
        added.append(name)

    yield add
    for name in added:
        del PROTOCOLS[name]


def test_an_error_names_its_protocol_and_writes_no_results(latent_dm, tmp_path, extra_protocols):
    def broken(ctx, options):
        raise MMIBError("test_broken: it broke")

    def slow(ctx, options):
        time.sleep(0.3)
        return {"protocol": "test_slow", "rows": [], "notes": [], "plots": {}}

    extra_protocols("test_broken", broken)
    extra_protocols("test_slow", slow)
    for jobs in (1, 2):
        with pytest.raises(MMIBError, match="test_broken: it broke") as err:
            evaluate(IdentityMethod(latent_dm.spec), latent_dm, ["test_slow", "test_broken", "retrieval"],
                     out_dir=tmp_path / f"j{jobs}", progress=False, jobs=jobs)
        assert "(in protocol 'test_broken')" in err.value.__notes__
        assert not (tmp_path / f"j{jobs}" / "results.json").exists()


def test_a_protocol_not_marked_concurrent_runs_alone_after_the_others(latent_dm, extra_protocols):
    log, lock = [], threading.Lock()

    def recorder(tag, pause):
        def run(ctx, options):
            with lock:
                log.append(("start", tag, threading.current_thread().name))
            time.sleep(pause)
            with lock:
                log.append(("end", tag, threading.current_thread().name))
            return {"protocol": tag, "rows": [], "notes": [], "plots": {}}
        return run

    extra_protocols("test_alone", recorder("test_alone", 0.05), concurrent=False)
    extra_protocols("test_a", recorder("test_a", 0.3))
    extra_protocols("test_b", recorder("test_b", 0.3))
    r = evaluate(IdentityMethod(latent_dm.spec), latent_dm, ["test_alone", "test_a", "test_b"], progress=False,
                 jobs=2)
    assert list(r["protocols"]) == ["test_alone", "test_a", "test_b"]  # results in the given order
    starts = [(tag, thread) for kind, tag, thread in log if kind == "start"]
    assert {t for t, _ in starts[:2]} == {"test_a", "test_b"} and starts[2][0] == "test_alone"
    assert log[2][0] == "end" and starts[2][1] == threading.current_thread().name  # after both, in the caller
    assert all(th.startswith("mmib-protocol") for t, th in starts[:2])


def test_jobs_is_checked():
    assert check_jobs(None) == default_jobs() >= 1 and check_jobs(3) == 3
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(MMIBError, match="jobs must be an integer >= 1"):
            check_jobs(bad)
