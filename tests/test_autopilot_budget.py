"""The autopilot's time budget, Ctrl-C, racing and timings: each leaves a valid result."""

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transferkit.autopilot import Autopilot, Strategy
from transferkit.autopilot.budget import parse_duration
from transferkit.baselines import Pooled
from transferkit.domains import stack_domains
from transferkit.validation import TransferKitInputError

SLEEP = 0.6


def make_task(seed=0, n_source=300, n_target=60):
    rng = np.random.default_rng(seed)
    w = np.array([1.5, -1.0, 0.5])
    Xs, Xt = rng.normal(0, 1, (n_source, 3)), rng.normal(0.5, 1, (n_target, 3))
    ys = (Xs @ w + rng.normal(0, 0.5, n_source) > 0).astype(int)
    yt = (Xt @ w + rng.normal(0, 0.5, n_target) > 0).astype(int)
    return stack_domains(Xs, ys, Xt, yt)


class SlowPooled(Pooled):
    """Pooled, after a pause: a strategy that costs time."""

    def fit(self, X, y):
        time.sleep(SLEEP)
        return super().fit(X, y)


class InterruptingPooled(Pooled):
    """Pooled whose fit is interrupted, as by Ctrl-C."""

    def fit(self, X, y):
        raise KeyboardInterrupt


SLOW = Strategy("slow_pooled", "baseline", "pooled after a pause",
                lambda task, seed: SlowPooled(random_state=seed))
INTERRUPTED = Strategy("interrupted", "baseline", "pooled, interrupted",
                       lambda task, seed: InterruptingPooled(random_state=seed))


@pytest.mark.parametrize("text, seconds", [("90", 90.0), ("90s", 90.0), ("10m", 600.0),
                                           ("1h30m", 5400.0), (" 2.5 m", 150.0), (45, 45.0),
                                           (0.5, 0.5)])
def test_durations_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "ten minutes", "10x", "-5", "0", "5m5m", "1h30", 0, -1.0,
                                 float("nan"), float("inf"), True, [10]])
def test_bad_durations_say_what_is_accepted(bad):
    with pytest.raises(TransferKitInputError, match="time_budget must be"):
        parse_duration(bad)


@settings(max_examples=50, deadline=None)
@given(h=st.integers(0, 3), m=st.integers(0, 59), s=st.integers(0, 59))
def test_composed_durations_add_up(h, m, s):
    text = "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v)
    if not text:
        return
    assert parse_duration(text) == 3600 * h + 60 * m + s


def test_a_bad_budget_is_refused_before_any_work():
    X, y = make_task()
    with pytest.raises(TransferKitInputError, match="time_budget"):
        Autopilot(["pooled"], time_budget="soon").run(X, y)
    with pytest.raises(TransferKitInputError, match="racing"):
        Autopilot(["pooled"], racing="yes").run(X, y)


def test_an_expired_budget_returns_a_valid_result_and_says_what_was_cut():
    X, y = make_task()
    budget = 4.0
    start = time.perf_counter()
    result = Autopilot(["pooled", SLOW], shift_permutations=20, n_repeats=3, n_jobs=1,
                       n_boot=50, time_budget=budget, random_state=0).run(X, y)
    elapsed = time.perf_counter() - start
    assert elapsed <= 1.1 * budget + 2 * SLEEP + 1.0       # the budget, plus about one fit
    timings = result.timings
    assert timings["stopped"] == "time budget"
    status = {r["strategy"]: r["status"] for r in timings["strategies"]}
    assert status["target_only"] == "complete" or status["target_only"].startswith("stopped")
    assert status["slow_pooled"] != "complete"
    assert any("time budget" in n for n in result.notes)
    assert result.model is not None and result.estimate is not None
    assert set(result.members) <= {r["strategy"] for r in timings["strategies"]
                                   if r["repeats_used"] > 0}
    assert len(result.model.predict(X)) == len(X)


def test_ctrl_c_during_the_evaluation_leaves_a_valid_result():
    X, y = make_task(seed=1)
    result = Autopilot(["pooled", INTERRUPTED], shift_permutations=20, n_repeats=2, n_jobs=1,
                       n_boot=50, random_state=0).run(X, y)
    assert result.timings["stopped"] == "interrupted"
    status = {r["strategy"]: r["status"] for r in result.timings["strategies"]}
    assert status["interrupted"].startswith("skipped: interrupted")
    assert "interrupted" not in result.members
    assert any("interrupted" in n for n in result.notes)
    assert len(result.model.predict(X)) == len(X)


def test_timings_account_for_every_fold_and_stage():
    X, y = make_task(seed=2)
    result = Autopilot(["pooled", "coral"], shift_permutations=20, n_repeats=2,
                       n_boot=50, random_state=0).run(X, y)
    timings = result.timings
    assert set(timings["stages"]) == {"shift", "evaluation", "selection", "refit"}
    assert sum(timings["stages"].values()) == pytest.approx(result.seconds, abs=0.05)
    for row in timings["strategies"]:
        assert row["folds"] == 10 and row["repeats_used"] == 2 and row["status"] == "complete"
        assert row["seconds"] == pytest.approx(10 * row["seconds_per_fold"])
    board = result.leaderboard.set_index("strategy")
    assert (board["folds"] == 10).all()
    assert result.to_dict()["timings"] == timings


def test_racing_drops_strategies_and_never_ships_one_raced_out():
    X, y = make_task(seed=3, n_target=80)
    chosen = ["source_only", "pooled", "coral", "kmm", "subspace_alignment", "tca"]
    result = Autopilot(chosen, shift_permutations=20, n_repeats=3, racing=True, n_boot=60,
                       random_state=0).run(X, y)
    status = {r["strategy"]: r for r in result.timings["strategies"]}
    raced = [n for n, r in status.items() if r["status"].startswith("raced out")]
    assert raced and "target_only" not in raced
    for name in raced:
        assert status[name]["repeats_used"] in (1, 2)
        assert name not in result.members
    assert any("Raced out" in n for n in result.notes)
    board = result.leaderboard.set_index("strategy")
    assert board.loc[raced, "folds"].max() < board.loc["target_only", "folds"]
