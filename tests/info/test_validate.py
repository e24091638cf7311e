"""mmib.info.validate: the study configuration's checks, the training batch per estimator model, the oracle rows
(each estimator's bound with the optimal critic) and the conditional check's rows, on tiny settings."""

import math

import pytest

from mmib.errors import UnknownNameError
from mmib.info.validate import (
    STUDY_ESTIMATORS,
    StudyConfig,
    model_lr,
    oracle_rows,
    run_conditional_check,
    run_gaussian_study,
    train_batch,
)


@pytest.mark.parametrize("kwargs,match", [
    (dict(steps_per_level=1), "steps_per_level must be a positive integer"),
    (dict(first_level_steps=1), "first_level_steps must be a positive integer"),
    (dict(eval_batches=1), "eval_batches must be a positive integer"),
    (dict(hidden_dim=0), "hidden_dim must be a positive integer"),
    (dict(train_batch_size=1), "train_batch_size must be an integer >= 2"),
    (dict(dims=()), "dims must be positive integers"),
    (dict(dims=(3, 0)), "dims must be positive integers"),
    (dict(mis=(1.0, -1.0)), "mis must be positive numbers"),
    (dict(ema=1.0), r"ema must be a decay in \[0, 1\)"),
    (dict(lr=0.0), "lr must be a finite number > 0"),
    (dict(lr=float("nan")), "lr must be a finite number > 0"),
    (dict(cond_rel_tolerance=0.0), "cond_rel_tolerance must be a fraction"),
])
def test_study_config_checks(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StudyConfig(**kwargs)


def test_unknown_estimators_and_quick_overrides():
    with pytest.raises(UnknownNameError, match="unknown estimator 'nope'"):
        StudyConfig(estimators=("infonce", "nope"))
    with pytest.raises(UnknownNameError, match="unknown estimator 'nope'"):
        StudyConfig(nongaussian_estimators=("nope",))
    q = StudyConfig.quick(dims=(4,), seed=3)
    assert q.dims == (4,) and q.seed == 3 and q.mis == (2.0, 6.0, 10.0) and q.steps_per_level == 150
    assert q.level_steps() == (150, 150, 150)  # the quick preset keeps equal levels
    assert StudyConfig.quick(steps_per_level=6).level_steps() == (6, 6, 6)
    assert StudyConfig.quick(steps_per_level=6, first_level_steps=20).level_steps() == (20, 6, 6)


def test_the_first_level_is_a_cold_start_of_estimate_mis_length():
    import inspect

    from mmib.info.estimate import DEFAULT_STEPS, estimate_mi

    cfg = StudyConfig()
    assert inspect.signature(estimate_mi).parameters["steps"].default == DEFAULT_STEPS == cfg.first_level_steps
    assert cfg.level_steps() == (DEFAULT_STEPS, 400, 400, 400, 400)
    assert StudyConfig(steps_per_level=2000).level_steps() == (2000,) * 5  # the first level: at least the others
    assert StudyConfig(mis=(1.0, 2.0), steps_per_level=10, first_level_steps=3).level_steps() == (10, 10)
    assert StudyConfig(mis=(1.0,), first_level_steps=1500).level_steps() == (1500,)


class _Recorder:
    """A reporter that records every task's total and the steps it was advanced by."""

    def __init__(self):
        self.totals, self.done = {}, {}

    def task(self, description, total):
        self.totals[description], self.done[description] = total, 0
        rec = self

        class Ctx:
            def __enter__(self):
                def advance(n=1):
                    rec.done[description] += n
                return advance

            def __exit__(self, *exc):
                return False

        return Ctx()


def test_staircase_trains_the_first_level_longer_then_steps_per_level():
    cfg = StudyConfig(dims=(2,), mis=(0.5, 1.0), steps_per_level=2, first_level_steps=5, batch_size=8, hidden_dim=4,
                      train_batch_size=8, eval_batches=2, estimators=("infonce",), nongaussian_estimators=("infonce",),
                      cond_cmis=(1.0,), cond_steps=2, cond_eval_batches=2)
    rec = _Recorder()
    res = run_gaussian_study(cfg, rec)
    assert len(res.traces["infonce"]["2"]) == 5 + 2  # one training value per step: 5 at the first level, 2 after
    assert rec.totals["Gaussian / cubic staircases"] == rec.done["Gaussian / cubic staircases"] == 2 * (5 + 2)
    assert [lv["true"] for lv in res.summary_nongaussian["infonce"]["2"]] == [0.5, 1.0]
    assert res.environment["learning_rates"]["club"] == model_lr(cfg, "club") == 5e-4  # recorded with the run
    assert res.environment["learning_rates"]["nce"] == 1e-3


def test_train_batch_is_the_override_or_estimate_mis_default():
    assert train_batch(StudyConfig(train_batch_size=32), "club") == 32
    cfg = StudyConfig(critic="concat", batch_size=48)
    assert train_batch(cfg, "nce") == 48  # O(N²) critic: trained at the evaluation batch
    assert train_batch(cfg, "club_linear") == train_batch(cfg, "club") == 512  # CLUB's q: O(N) per step
    assert train_batch(StudyConfig(critic="separable", batch_size=48), "nce") == 512


def test_oracle_rows_are_bounds_at_their_levels():
    cfg = StudyConfig(dims=(2,), mis=(0.5, 6.0), batch_size=32, eval_batches=3, estimators=("infonce", "club"),
                      nongaussian_estimators=("nce_club",))
    rows = oracle_rows(cfg)
    assert list(rows) == ["infonce", "club", "nce_club"]  # the union, in the registry's order
    for e in rows:
        assert [r["true"] for r in rows[e]["2"]] == [0.5, 6.0]
        assert all(math.isfinite(r["mean"]) and r["sem"] >= 0 for r in rows[e]["2"])
    inf = rows["infonce"]["2"]
    assert inf[1]["mean"] <= math.log(32) < 6.0  # InfoNCE saturates at log N below the truth
    assert rows["club"]["2"][1]["mean"] > 6.0 - 3 * rows["club"]["2"][1]["sem"]  # an upper bound
    assert rows["club"] == rows["nce_club"]  # the same optimal-critic value
    assert oracle_rows(cfg) == rows  # seeded


def test_conditional_check_rows_on_a_tiny_setting():
    cfg = StudyConfig(dims=(2,), mis=(1.0,), cond_dim=2, cond_cmis=(1.0,), cond_steps=2, cond_eval_batches=2,
                      batch_size=8, hidden_dim=4, critic="separable", train_batch_size=8, standardize=False,
                      ema=0.0)
    calls = []

    class Reporter:
        def task(self, description, total):
            calls.append((description, total))
            outer = self

            class Ctx:
                def __enter__(self):
                    return lambda n=1: outer.__dict__.setdefault("done", []).append(n)

                def __exit__(self, *exc):
                    return False

            return Ctx()

    reporter = Reporter()
    rows = run_conditional_check(cfg, reporter)
    assert calls == [("Conditional check", 1 * 2 * (2 + 2))] and sum(reporter.done) == 8
    assert [(r["negatives"], r["true_cmi"], r["dim"]) for r in rows] == [("same_condition", 1.0, 2), ("batch", 1.0, 2)]
    assert all(math.isfinite(r[k]) for r in rows for k in ("infonce", "nce_club", "infonce_sem", "nce_club_sem"))
    assert rows == run_conditional_check(cfg)  # seeded; no reporter needed
    assert set(STUDY_ESTIMATORS) >= {"infonce", "club", "nce_club"}


def test_model_lr_is_the_override_or_estimate_mis_default_per_model():
    from mmib.info.estimate import DEFAULT_CLUB_MLP_LR, DEFAULT_LR, default_lr

    assert DEFAULT_CLUB_MLP_LR < DEFAULT_LR
    assert default_lr("club") == default_lr("club", "mlp") == DEFAULT_CLUB_MLP_LR
    assert default_lr("club", "linear") == default_lr("infonce") == default_lr("nce_club") == DEFAULT_LR
    cfg = StudyConfig()
    assert model_lr(cfg, "club") == DEFAULT_CLUB_MLP_LR
    assert model_lr(cfg, "club_linear") == model_lr(cfg, "nce") == model_lr(cfg, "nwj") == DEFAULT_LR
    assert model_lr(StudyConfig(club_q="linear"), "club") == DEFAULT_LR
    assert {model_lr(StudyConfig(lr=3e-4), m) for m in ("nce", "nwj", "mine", "club", "club_linear")} == {3e-4}
