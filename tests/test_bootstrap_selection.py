"""Weighted metrics, BBC-CV and the selection rules against independent references."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transferkit.autopilot.selection import (
    best_single,
    choose,
    greedy_ensemble,
    guard_shares,
    only,
    race_survivors,
)
from transferkit.evaluation import classification_metrics, regression_metrics
from transferkit.evaluation.bootstrap import (
    OutOfFold,
    bbc_estimate,
    stratified_bootstrap,
    weighted_scores,
)

CLASSIFICATION = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro",
                  "f1_macro", "precision_pos", "recall_pos", "f1_pos", "roc_auc")


def random_oof(K=6, R=2, n=40, C=2, seed=0, accuracy=0.7, task="classification"):
    """Candidates whose out-of-fold predictions are right with probability ``accuracy``,
    independently per row: every candidate is equally good, in truth."""
    rng = np.random.default_rng(seed)
    if task == "regression":
        y = rng.normal(size=n)
        pred = y[None, None] + rng.normal(size=(K, R, n))
        return OutOfFold([f"s{k}" for k in range(K)], task, y, pred, None, None, (), None,
                         np.arange(n))
    y = np.resize(np.arange(C), n)
    right = rng.random((K, R, n)) < accuracy
    wrong = (y[None, None] + rng.integers(1, C, size=(K, R, n))) % C
    pred = np.where(right, y[None, None], wrong)
    proba = 0.6 * np.eye(C)[pred] + 0.4 * rng.dirichlet(np.ones(C), size=(K, R, n))
    score = proba[..., 1] if C == 2 else None
    names = ["target_only"] + [f"s{k}" for k in range(1, K)]
    return OutOfFold(names, "classification", y, pred, proba, score, tuple(range(C)),
                     1 if C == 2 else None, np.arange(n))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(6, 40), C=st.integers(2, 4), seed=st.integers(0, 10_000))
def test_weighted_classification_metrics_match_the_reference(n, C, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    y[:C] = np.arange(C)  # every class present
    pred = rng.integers(0, C, size=(3, n))
    proba = rng.dirichlet(np.ones(C), size=(3, n))
    W = rng.integers(0, 4, size=(4, n)).astype(float)
    W[:, :C] += 1
    pos = 1 if C == 2 else None
    for metric in CLASSIFICATION:
        if metric.endswith("_pos") and pos is None:
            continue
        got = weighted_scores(metric, "classification", y, pred, proba, W, C, pos,
                              score=proba[..., 1] if C == 2 else None)
        for m in range(3):
            for b in range(4):
                keep = W[b] > 0
                expected = classification_metrics(
                    y[keep], pred[m, keep], proba[m, keep, 1] if C == 2 else proba[m, keep],
                    positive_label=pos, classes=list(range(C)), sample_weight=W[b, keep])
                assert got[m, b] == pytest.approx(expected[metric], nan_ok=True, abs=1e-9), metric


@settings(max_examples=30, deadline=None)
@given(n=st.integers(3, 40), seed=st.integers(0, 10_000))
def test_weighted_regression_metrics_match_the_reference(n, seed):
    rng = np.random.default_rng(seed)
    y, pred = rng.normal(size=n), rng.normal(size=(2, n))
    W = rng.integers(1, 4, size=(3, n)).astype(float)
    for metric in ("rmse", "mae", "r2"):
        got = weighted_scores(metric, "regression", y, pred, None, W)
        for m in range(2):
            for b in range(3):
                expected = regression_metrics(y, pred[m], sample_weight=W[b])[metric]
                assert got[m, b] == pytest.approx(expected, abs=1e-9)


def test_stratified_bootstrap_keeps_class_counts():
    y = np.array([0] * 7 + [1] * 3)
    counts = stratified_bootstrap(y, 50, random_state=1)
    assert counts.shape == (50, 10)
    assert np.all(counts[:, :7].sum(1) == 7) and np.all(counts[:, 7:].sum(1) == 3)
    assert np.array_equal(counts, stratified_bootstrap(y, 50, random_state=1))


def test_best_of_many_equal_strategies_is_optimistic_and_the_correction_is_not():
    # 20 strategies, all right on 70% of rows in truth: the naive best-of-20 figure
    # is far above 0.7, the bias-corrected estimate of "choose, then ship" is not.
    naive, corrected = [], []
    for seed in range(6):
        oof = random_oof(K=20, R=1, n=60, seed=seed)
        estimate = bbc_estimate(
            oof, lambda o, W: best_single(o, "accuracy", True, "target_only", W),
            "accuracy", True, "target_only", n_boot=200, random_state=seed)
        naive.append(estimate.naive)
        corrected.append(estimate.corrected)
    assert np.mean(naive) > 0.76
    assert abs(np.mean(corrected) - 0.7) < 0.025
    # every candidate is as good as the baseline: no gain to claim
    assert abs(estimate.gain) < 0.05 and estimate.gain_ci_low < 0 < estimate.gain_ci_high


def test_selection_never_sees_the_out_of_bag_labels():
    oof = random_oof(K=5, R=2, n=30, seed=3)
    seen = []

    def spy(o, W):
        seen.append(W.copy())
        return greedy_ensemble(o, "balanced_accuracy", True, "target_only", W)

    bbc_estimate(oof, spy, "balanced_accuracy", True, "target_only", n_boot=40, random_state=0)
    W_in = seen[0]
    # relabelling the rows a bootstrap leaves out does not change what it selects there
    for b in range(5):
        out = W_in[b] == 0
        changed = OutOfFold(oof.names, oof.task, np.where(out, 1 - oof.y, oof.y), oof.pred,
                            oof.proba, oof.score, oof.classes, oof.pos_code, oof.rows)
        first = greedy_ensemble(oof, "balanced_accuracy", True, "target_only", W_in[b:b + 1])
        second = greedy_ensemble(changed, "balanced_accuracy", True, "target_only",
                                 W_in[b:b + 1])
        assert np.array_equal(first, second)


def test_best_single_prefers_the_baseline_on_ties_and_picks_the_best():
    oof = random_oof(K=3, R=1, n=20, seed=0)
    pred = oof.pred.copy()
    pred[1] = pred[0]                      # s1 ties with the baseline
    pred[2, 0] = oof.y                     # s2 is perfect
    tied = OutOfFold(oof.names, oof.task, oof.y, pred, np.eye(2)[pred], None, (0, 1), 1,
                     oof.rows)
    assert best_single(tied, "accuracy", True, "target_only", np.ones((1, 20)))[0].tolist() \
        == [0, 0, 1]
    pred[2] = pred[0]
    tied = OutOfFold(oof.names, oof.task, oof.y, pred, np.eye(2)[pred], None, (0, 1), 1,
                     oof.rows)
    assert best_single(tied, "accuracy", True, "target_only", np.ones((1, 20)))[0].tolist() \
        == [1, 0, 0]


def naive_ensemble(oof, metric, steps):
    """Caruana's ensemble selection written plainly, one weight vector of all ones."""
    K = len(oof.names)

    def score(counts):
        proba = np.tensordot(counts / counts.sum(), oof.proba, axes=1)
        values = [classification_metrics(oof.y, proba[r].argmax(1), proba[r][:, 1],
                                          positive_label=1, classes=[0, 1])[metric]
                  for r in range(proba.shape[0])]
        return float(np.mean(values))

    singles = [float(np.mean([classification_metrics(oof.y, oof.pred[k, r], oof.score[k, r],
                                                     positive_label=1, classes=[0, 1])[metric]
                              for r in range(oof.pred.shape[1])])) for k in range(K)]
    counts = np.zeros(K)
    counts[int(np.argmax(singles))] = 1
    best, best_counts = max(singles), counts.copy()
    for _ in range(steps):
        trials = [score(counts + np.eye(K)[k]) for k in range(K)]
        k = int(np.argmax(trials))
        counts = counts + np.eye(K)[k]
        if trials[k] > best + 1e-12:
            best, best_counts = trials[k], counts.copy()
    return best_counts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_ensemble_matches_a_plain_implementation(seed):
    oof = random_oof(K=5, R=2, n=30, seed=seed, accuracy=0.65)
    got = greedy_ensemble(oof, "balanced_accuracy", True, "target_only", np.ones((1, 30)),
                          steps=6)[0]
    expected = naive_ensemble(oof, "balanced_accuracy", 6)
    assert got.tolist() == expected.tolist()
    assert (got > 0).sum() > 1  # a real ensemble, not the single best


def test_choose_guard_keeps_the_baseline_when_the_corrected_gain_is_not_positive():
    # the baseline is right on 75% of rows, the others on 70%: none truly helps
    oof = random_oof(K=8, R=1, n=40, seed=5)
    rng = np.random.default_rng(9)
    pred = oof.pred.copy()
    pred[0] = np.where(rng.random(40) < 0.8, oof.y, 1 - oof.y)
    oof = OutOfFold(oof.names, oof.task, oof.y, pred, np.eye(2)[pred], pred.astype(float),
                    oof.classes, oof.pos_code, oof.rows)
    choice = choose(oof, "accuracy", True, "target_only", "best", n_boot=100)
    assert choice.members == {"target_only": 1.0}
    assert choice.estimate.gain == 0.0
    # s4 beat the baseline on these rows and passed the share, but choosing it
    # is estimated to lose: the guard keeps the baseline for that reason
    assert choice.rule_members == {"s4": 1.0} and choice.reason == "gain"
    assert choice.procedure.gain < 0
    fixed = only(oof, "target_only", np.ones((3, 40)))
    assert fixed.shape == (3, 8) and fixed[:, 0].tolist() == [1, 1, 1]


def test_bbc_estimate_matches_a_plain_bootstrap_loop():
    # the BBC-CV recipe written out row by row with scikit-learn's metric
    from sklearn.metrics import accuracy_score

    oof = random_oof(K=5, R=1, n=36, seed=11, accuracy=0.7)
    n_boot, level = 80, 0.9
    est = bbc_estimate(oof, lambda o, W: best_single(o, "accuracy", True, "target_only", W),
                       "accuracy", True, "target_only", n_boot=n_boot, confidence=level,
                       random_state=4)
    counts = stratified_bootstrap(oof.y, n_boot, 4)
    chosen_scores, gains, picks = [], [], []
    for c in counts:
        inbag, oob = c, (c == 0).astype(float)
        fit = [accuracy_score(oof.y, oof.pred[k, 0], sample_weight=inbag)
               for k in range(len(oof.names))]
        k = int(np.argmax(fit))          # first maximum: the baseline wins ties
        score = accuracy_score(oof.y, oof.pred[k, 0], sample_weight=oob)
        base = accuracy_score(oof.y, oof.pred[0, 0], sample_weight=oob)
        chosen_scores.append(score)
        gains.append(score - base)
        picks.append(oof.names[k])
    gains = np.array(gains)
    assert est.n_boot == n_boot
    assert est.corrected == pytest.approx(np.mean(chosen_scores))
    assert est.gain == pytest.approx(gains.mean())
    assert [est.gain_ci_low, est.gain_ci_high] == pytest.approx(np.quantile(gains, [0.05, 0.95]))
    assert [est.corrected_ci_low, est.corrected_ci_high] == pytest.approx(
        np.quantile(chosen_scores, [0.05, 0.95]))
    assert est.prob_gain == pytest.approx(np.mean(gains > 0) + 0.5 * np.mean(gains == 0))
    assert est.p_value == pytest.approx(2 * min(est.prob_gain, 1 - est.prob_gain))
    assert est.choice_frequency == {n: picks.count(n) for n in set(picks)}


def test_choose_guard_asks_for_a_share_of_bootstrap_wins():
    # one candidate is a little better than the baseline, with much noise
    oof = random_oof(K=2, R=1, n=40, seed=3, accuracy=0.7)
    draw = np.random.default_rng(5).random(40)
    pred = oof.pred.copy()     # s1: right on 45% of rows, wrong on 15%, else the baseline
    pred[1] = np.where(draw < 0.45, oof.y, np.where(draw < 0.6, 1 - oof.y, pred[0]))
    oof = OutOfFold(oof.names, oof.task, oof.y, pred, np.eye(2)[pred], pred.astype(float),
                    oof.classes, oof.pos_code, oof.rows)
    loose = choose(oof, "accuracy", True, "target_only", "best", n_boot=100,
                   guard_probability=0.0)
    share = loose.guard_share
    assert loose.members == {"s1": 1.0} and not loose.guarded and 0.5 < share < 1.0
    strict = choose(oof, "accuracy", True, "target_only", "best", n_boot=100,
                    guard_probability=min(1.0, share + 0.01))
    assert strict.guarded and strict.reason == "share"
    assert strict.members == {"target_only": 1.0}
    assert strict.rule_members == {"s1": 1.0} and strict.guard_share == share
    # the guard is replayed on every bootstrap sample: the strict procedure ships
    # the baseline in more of them than the loose one, and its estimate says so
    assert (strict.estimate.choice_frequency.get("target_only", 0)
            > loose.estimate.choice_frequency.get("target_only", 0))
    assert loose.estimate.corrected == pytest.approx(loose.rule_estimate.corrected)


def test_guard_share_matches_a_plain_resampling_loop(monkeypatch):
    # the share written out: resample the rows (recorded), score both on the
    # repeated rows with scikit-learn's metric, count the wins
    from sklearn.metrics import balanced_accuracy_score

    from transferkit.autopilot import selection

    oof = random_oof(K=3, R=2, n=30, seed=6, accuracy=0.7)
    W = stratified_bootstrap(oof.y, 4, random_state=2)
    A = np.array([[0, 2, 1], [1, 0, 0], [0, 0, 1], [0, 1, 1]], dtype=float)
    drawn = []
    original = selection._resample

    def recording(*args):
        out = original(*args)
        drawn.append(out)
        return out

    monkeypatch.setattr(selection, "_resample", recording)
    got = guard_shares(oof, "balanced_accuracy", True, "target_only", A, W, resamples=20)
    assert got[1] == 0.0 and len(drawn) == 3          # the baseline row is not resampled

    def score(weights, rows):
        if (weights > 0).sum() == 1:
            preds = oof.pred[int(weights.argmax())]
        else:
            preds = np.tensordot(weights, oof.proba, axes=1).argmax(-1)
        return np.mean([balanced_accuracy_score(oof.y[rows], p[rows]) for p in preds])

    base = np.array([1.0, 0, 0])
    for b, counts in zip([0, 2, 3], drawn):
        assert np.allclose(counts.sum(1), W[b].sum())
        for c in (0, 1):   # stratified: each class keeps its weight
            assert np.allclose(counts[:, oof.y == c].sum(1), W[b, oof.y == c].sum())
        assert not counts[:, W[b] == 0].any()         # only the rows W[b] holds
        gains = []
        for row in counts:
            rows = np.repeat(np.arange(30), row.astype(int))
            gains.append(score(A[b], rows) - score(base, rows))
        gains = np.array(gains)
        assert got[b] == pytest.approx(np.mean(gains > 1e-12)
                                       + 0.5 * np.mean(np.abs(gains) <= 1e-12))


def test_the_whole_procedure_is_not_optimistic_when_no_strategy_helps():
    # 12 strategies as good as the baseline in truth (70%): the single one that
    # ships scores 0.7 on new rows, so the estimate of the procedure (rule, then
    # guard) must not promise more, while the naive best-of-12 figure does.
    # (Not the ensemble rule: a mixture of independent errors is truly better.)
    corrected, naive, gains = [], [], []
    for seed in range(6):
        oof = random_oof(K=12, R=2, n=50, seed=seed)
        choice = choose(oof, "balanced_accuracy", True, "target_only", "best", n_boot=100,
                        random_state=seed)
        corrected.append(choice.estimate.corrected)
        naive.append(choice.rule_estimate.naive)
        gains.append(choice.estimate.gain)
    assert np.mean(naive) > 0.75
    assert abs(np.mean(corrected) - 0.7) < 0.03
    assert np.mean(gains) < 0.01


def test_regression_selection_and_estimate():
    oof = random_oof(K=4, R=2, n=30, seed=1, task="regression")
    oof.names[0] = "target_only"
    estimate = bbc_estimate(
        oof, lambda o, W: greedy_ensemble(o, "rmse", False, "target_only", W), "rmse", False,
        "target_only", n_boot=60)
    # an average of independent noisy predictions beats each of them: a real gain
    assert estimate.gain > 0 and estimate.corrected < 1.0


def test_weighted_ensemble_is_the_weighted_mean_of_its_members():
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.tree import DecisionTreeClassifier

    from transferkit.autopilot.ensemble import WeightedEnsemble

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=60) > 0, "b", "a")
    members = [LogisticRegression().fit(X, y), DecisionTreeClassifier(max_depth=2).fit(X, y)]
    ensemble = WeightedEnsemble(members, [3, 1], "classification", ("a", "b"))
    expected = 0.75 * members[0].predict_proba(X) + 0.25 * members[1].predict_proba(X)
    assert np.allclose(ensemble.predict_proba(X), expected)
    assert ensemble.predict(X).tolist() == np.array(["a", "b"])[expected.argmax(1)].tolist()
    values = X @ np.array([1.0, 2.0, 0.0])
    regressors = [Ridge().fit(X, values), Ridge(alpha=10).fit(X, values)]
    mixed = WeightedEnsemble(regressors, [1, 1], "regression")
    assert np.allclose(mixed.predict(X), (regressors[0].predict(X) + regressors[1].predict(X)) / 2)
    assert not hasattr(mixed, "predict_proba")


def _naive_race(oof, metric, W_row, steps, keep=0.5):
    """Successive halving written plainly: one weight row, loops and sorting."""
    alive = list(range(len(oof.names)))
    for seen in steps:
        scored = []
        for k in alive:
            values = [classification_metrics(oof.y, oof.pred[k, r], positive_label=1,
                                             sample_weight=W_row)[metric] for r in range(seen)]
            scored.append((-np.mean(values), alive.index(k), k))
        n_keep = max(2, int(np.ceil(keep * len(alive))))
        alive = sorted({k for _, _, k in sorted(scored)[:n_keep]} | {0})
    return alive


@pytest.mark.parametrize("steps", [(1,), (1, 2), (2,)])
def test_race_survivors_match_a_plain_successive_halving(steps):
    oof = random_oof(K=9, R=3, n=30, seed=4)
    W = stratified_bootstrap(oof.y, 5, random_state=1)
    alive = race_survivors(oof, "accuracy", True, "target_only", W, steps)
    for b in range(W.shape[0]):
        assert sorted(np.flatnonzero(alive[b])) == _naive_race(oof, "accuracy", W[b], steps)


def test_race_keeps_a_clearly_best_strategy_and_choose_replays_it():
    oof = random_oof(K=10, R=3, n=60, seed=2, accuracy=0.6)
    best = oof.index("s7")
    oof.pred[best] = oof.y[None]                      # right on every row, every repeat
    oof.proba[best] = np.eye(2)[oof.y][None]
    oof.score[best] = oof.proba[best][..., 1]
    W = stratified_bootstrap(oof.y, 50, random_state=0)
    alive = race_survivors(oof, "balanced_accuracy", True, "target_only", W, (1, 2))
    assert alive[:, best].all() and alive[:, 0].all()
    assert (alive.sum(1) <= 4).all()                 # 10 -> 5 -> 3, plus the baseline
    for rule in ("best", "ensemble"):
        choice = choose(oof, "balanced_accuracy", True, "target_only", rule, n_boot=60,
                        race_steps=(1, 2), random_state=0)
        assert choice.members == {"s7": 1.0}


def test_a_raced_rule_never_picks_a_candidate_raced_out():
    oof = random_oof(K=8, R=2, n=40, seed=9)
    W = stratified_bootstrap(oof.y, 20, random_state=3)
    alive = race_survivors(oof, "accuracy", True, "target_only", W, (1,))
    for rule in (best_single, greedy_ensemble):
        A = rule(oof, "accuracy", True, "target_only", W, alive)
        assert not (A[~alive] > 0).any()
