"""How the autopilot chooses what to ship from the candidates' out-of-fold predictions.

Every rule here is a pure function of the out-of-fold predictions
(:class:`~transferkit.evaluation.bootstrap.OutOfFold`) and a vector of row
weights, so the same rule runs on all labelled target rows (the real
choice) and on bootstrap samples of them (its honest estimate,
:func:`~transferkit.evaluation.bootstrap.bbc_estimate`).  A rule returns, per
weight vector, non-negative weights over the candidates: one-hot for a
single strategy, several for an ensemble.

* :func:`best_single`: the candidate with the best score (the mean over CV
  repeats of the metric on the pooled out-of-fold predictions); ties go to
  the earlier candidate, and the baseline comes first.
* :func:`greedy_ensemble`: ensemble selection of Caruana, Niculescu-Mizil,
  Crew & Ksikes (2004), "Ensemble selection from libraries of models", ICML:
  start from the best candidate, then add (with replacement) the candidate
  whose addition most improves the ensemble's score, ``steps`` times, and
  keep the best ensemble seen.  The ensemble predicts the weighted mean of
  its members' class probabilities (classification) or predictions
  (regression).  Picking with replacement and stopping at the best step
  keeps it from over-fitting much, and averaging several good candidates
  lowers the variance that a tiny target puts into any single choice.

Both replace a choice scoring below the baseline on the same rows by the
baseline.  Both take an optional
``allowed`` mask (B, K): the candidates each weight row may choose from.

:func:`race_survivors` is successive halving over CV repeats (Jamieson &
Talwalkar 2016, "Non-stochastic best arm identification and hyperparameter
optimization", AISTATS): after the first ``s`` repeats of each racing step
only the best ``RACE_KEEP`` share of the candidates still racing (never fewer
than two, the baseline always) is evaluated further.  A candidate raced out
keeps its first repeat's out-of-fold predictions as its later repeats
(still out-of-fold for every row).  Because the race looks at the same
labelled rows as the choice, it is part of the procedure :func:`choose`
estimates: every bootstrap sample replays the race on its own weights.

:func:`choose` is the whole procedure the autopilot runs: the rule, then the
guard (:func:`guarded`), on all labelled target rows, and the bootstrap
bias-corrected estimate (BBC-CV) of both together.  The guard ships the
baseline unless the rule's choice beat it in at least
:data:`GUARD_PROBABILITY` of :data:`GUARD_RESAMPLES` bootstrap resamples of
the rows it was chosen on.  Because the guard looks only at those rows it is
a pure function of the weights like the rule, so every bootstrap sample of
the estimate replays it: the guard fires more often when the baseline looks
good by chance, and an estimate taken after the guard without replaying it
was measured 8 points more optimistic on the draws where it fired than on
those where it did not.  Why so high a share: the rows that chose are the
rows that judge, so the rule's choice looks better on them than it is; on
30-100 labelled rows a transfer that does not help costs more than a
baseline shipped in its place.  The threshold was measured on
``benchmarks/bench_autopilot.py``, tasks where transfer hurts included.

Example
-------
>>> import numpy as np
>>> from transferkit.evaluation.bootstrap import OutOfFold
>>> y = np.array([0, 1, 0, 1, 1, 0])
>>> pred = np.array([[[0, 0, 0, 0, 0, 0]], [[0, 1, 0, 1, 0, 0]]])     # K=2, R=1
>>> proba = np.eye(2)[pred]
>>> oof = OutOfFold(["target_only", "pooled"], "classification", y, pred, proba, None,
...                 (0, 1), 1, np.arange(6))
>>> best_single(oof, "accuracy", True, "target_only", np.ones((1, 6)))
array([[0., 1.]])
"""

from __future__ import annotations

import numpy as np

from dataclasses import dataclass

from transferkit.evaluation.bootstrap import BBCEstimate, OutOfFold, bbc_estimate, weighted_scores

__all__ = ["Choice", "choose", "candidate_scores", "only", "best_single", "greedy_ensemble",
           "race_survivors", "guard_shares", "guarded", "SELECTION_RULES", "ENSEMBLE_STEPS",
           "GUARD_PROBABILITY", "GUARD_RESAMPLES", "RACE_KEEP"]

#: Additions made by :func:`greedy_ensemble` after its first member.
ENSEMBLE_STEPS = 15

#: The guard ships the baseline unless the rule's choice beat it in at least
#: this share of :data:`GUARD_RESAMPLES` bootstrap resamples of the rows it was
#: chosen on (module docstring).
GUARD_PROBABILITY = 0.95

#: Bootstrap resamples behind each guard decision.
GUARD_RESAMPLES = 50

#: Share of the candidates still racing that each step of :func:`race_survivors` keeps.
RACE_KEEP = 0.5


def _scores(oof: OutOfFold, metric, pred, proba, score, W) -> np.ndarray:
    """(K, B) mean over repeats of the metric of ``pred`` (K, R, n) under ``W``."""
    K, R, n = pred.shape
    flat = lambda a: None if a is None else a.reshape((K * R,) + a.shape[2:])  # noqa: E731
    values = weighted_scores(metric, oof.task, oof.y, flat(pred), flat(proba), W,
                             oof.n_classes or None, oof.pos_code, score=flat(score))
    values = values.reshape(K, R, -1)
    with np.errstate(invalid="ignore"):
        return np.nanmean(values, axis=1) if np.isfinite(values).any() else values[:, 0]


def candidate_scores(oof: OutOfFold, metric: str, W: np.ndarray, repeats=None) -> np.ndarray:
    """Score of each candidate under each weight row: shape (K, B); over the first
    ``repeats`` CV repeats only when given."""
    cut = slice(None) if repeats is None else slice(0, repeats)
    part = lambda a: None if a is None else a[:, cut]  # noqa: E731
    return _scores(oof, metric, part(oof.pred), part(oof.proba), part(oof.score),
                   np.atleast_2d(W))


def _orient(values, greater_is_better, allowed=None):
    """Scores made "greater is better"; undefined or not allowed ones -inf.
    ``values`` is (K, B), ``allowed`` (B, K)."""
    values = values if greater_is_better else -values
    keep = np.isfinite(values) if allowed is None else np.isfinite(values) & allowed.T
    return np.where(keep, values, -np.inf)


def _allowed(allowed, W, K, base):
    """The (B, K) mask of candidates each weight row may choose, baseline included."""
    allowed = (np.ones((W.shape[0], K), dtype=bool) if allowed is None
               else np.array(np.broadcast_to(allowed, (W.shape[0], K)), dtype=bool))
    allowed[:, base] = True
    return allowed


def race_survivors(oof: OutOfFold, metric: str, greater_is_better: bool, baseline: str,
                   W: np.ndarray, steps=(1,), keep: float = RACE_KEEP) -> np.ndarray:
    """Successive halving over CV repeats under each weight row: alive mask (B, K).

    ``steps`` lists, per racing step, how many repeats the step has seen; each
    step keeps the ``ceil(keep * alive)`` best of the candidates still alive
    (at least two; the baseline always; ties to the earlier candidate).
    """
    W = np.atleast_2d(W)
    K = len(oof.names)
    base = oof.index(baseline)
    alive = np.ones((W.shape[0], K), dtype=bool)
    for seen in steps:
        scores = _orient(candidate_scores(oof, metric, W, repeats=seen), greater_is_better,
                         alive)                                          # (K, B)
        n_keep = np.maximum(2, np.ceil(keep * alive.sum(1))).astype(int)  # (B,)
        rank = np.argsort(np.argsort(-scores, axis=0, kind="stable"), axis=0, kind="stable")
        alive = alive & (rank < n_keep[None]).T
        alive[:, base] = True
    return alive


def _guard(A, chosen_score, base_score, base_index):
    """Rows whose choice scores below the baseline ship the baseline instead."""
    worse = chosen_score < base_score
    A = A.copy()
    A[worse] = 0.0
    A[worse, base_index] = 1.0
    return A


def only(oof: OutOfFold, name: str, W: np.ndarray) -> np.ndarray:
    """One-hot (B, K) on candidate ``name`` whatever the rows: the fixed choice."""
    A = np.zeros((np.atleast_2d(W).shape[0], len(oof.names)))
    A[:, oof.index(name)] = 1.0
    return A


def best_single(oof: OutOfFold, metric: str, greater_is_better: bool, baseline: str,
                W: np.ndarray, allowed=None) -> np.ndarray:
    """One-hot (B, K): the best-scoring allowed candidate under each weight row.

    The baseline is moved first, so it wins every tie (no transfer without a
    gain), and the guard is implied: the winner never scores below it.
    """
    W = np.atleast_2d(W)
    base = oof.index(baseline)
    allowed = _allowed(allowed, W, len(oof.names), base)
    scores = _orient(candidate_scores(oof, metric, W), greater_is_better, allowed)  # (K, B)
    order = [base] + [k for k in range(len(oof.names)) if k != base]
    pick = np.asarray(order)[np.argmax(scores[order], axis=0)]
    A = np.zeros((W.shape[0], len(oof.names)))
    A[np.arange(W.shape[0]), pick] = 1.0
    return A


def _mixture(oof: OutOfFold, totals, counts):
    """Predictions of each trial ensemble ``totals / counts``: (K, R, n) and extras."""
    if oof.task == "regression":
        return totals / counts, None, None
    proba = totals / counts
    pred = proba.argmax(-1)
    score = proba[..., oof.pos_code] if oof.score is not None else None
    return pred, proba, score


def greedy_ensemble(oof: OutOfFold, metric: str, greater_is_better: bool, baseline: str,
                    W: np.ndarray, allowed=None, steps: int = ENSEMBLE_STEPS) -> np.ndarray:
    """Caruana et al.'s ensemble selection under each weight row: counts (B, K).

    Members (allowed candidates only) are added with replacement; the returned
    row is the best ensemble over the steps (a single candidate when no
    addition helps), guarded against the baseline.
    """
    W = np.atleast_2d(W)
    K = len(oof.names)
    base = oof.index(baseline)
    allowed = _allowed(allowed, W, K, base)
    members = oof.pred.astype(float) if oof.task == "regression" else oof.proba
    single = _orient(candidate_scores(oof, metric, W), greater_is_better)   # (K, B)
    A = best_single(oof, metric, greater_is_better, baseline, W, allowed)
    out = A.copy()
    for b in range(W.shape[0]):
        counts = A[b].copy()
        total = np.tensordot(counts, members, axes=1)          # (R, n[, C])
        best_value = single[counts.argmax(), b]
        for step in range(1, steps + 1):
            trials = total[None] + members                     # (K, R, n[, C])
            pred, proba, score = _mixture(oof, trials, step + 1)
            values = _orient(_scores(oof, metric, pred, proba, score, W[b:b + 1]),
                             greater_is_better, allowed[b:b + 1])[:, 0]
            k = int(np.argmax(values))
            counts[k] += 1
            total = total + members[k]
            if values[k] > best_value + 1e-12:
                best_value = values[k]
                out[b] = counts
    chosen = np.array([_orient(_scores_of(oof, metric, out[b], W[b:b + 1]), greater_is_better)[0]
                       for b in range(W.shape[0])])
    return _guard(out, chosen, single[base], base)


def _scores_of(oof: OutOfFold, metric: str, weights: np.ndarray, W) -> np.ndarray:
    """Scores (B,) of one combination (a single candidate or an ensemble) under each
    weight row of ``W`` (B, n)."""
    W = np.atleast_2d(W)
    if (weights > 0).sum() == 1:
        k = int(weights.argmax())
        part = lambda a: None if a is None else a[k:k + 1]  # noqa: E731
        return _scores(oof, metric, part(oof.pred), part(oof.proba), part(oof.score), W)[0]
    members = oof.pred.astype(float) if oof.task == "regression" else oof.proba
    total = np.tensordot(weights, members, axes=1)[None]
    pred, proba, score = _mixture(oof, total, weights.sum())
    return _scores(oof, metric, pred, proba, score, W)[0]


def _resample(y, w, size, rng, stratify):
    """``size`` bootstrap resamples (size, n) of the rows weighted ``w``: each
    class's total weight redrawn over its own rows when ``stratify``."""
    out = np.zeros((size, w.shape[0]))
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    for rows in groups:
        mass = w[rows].sum()
        if mass > 0:
            out[:, rows] = rng.multinomial(int(round(mass)), w[rows] / mass, size=size)
    return out


def guard_shares(oof: OutOfFold, metric: str, greater_is_better: bool, baseline: str,
                 A: np.ndarray, W: np.ndarray, resamples: int = GUARD_RESAMPLES,
                 random_state=0) -> np.ndarray:
    """The guard's statistic (B,): in how many bootstrap resamples of its own rows
    ``W[b]`` the combination ``A[b]`` beat the baseline (ties count half); 0 where
    ``A[b]`` is the baseline."""
    W = np.atleast_2d(W)
    base = np.zeros(len(oof.names))
    base[oof.index(baseline)] = 1.0
    sign = 1.0 if greater_is_better else -1.0
    rng = np.random.default_rng(random_state)
    stratify = oof.task == "classification"
    shares = np.zeros(W.shape[0])
    for b in range(W.shape[0]):
        if np.allclose(A[b] / A[b].sum(), base):
            continue
        inner = _resample(oof.y, W[b], resamples, rng, stratify)
        gains = sign * (_scores_of(oof, metric, A[b], inner) - _scores_of(oof, metric, base, inner))
        gains = gains[np.isfinite(gains)]
        if gains.size:
            tie = np.abs(gains) <= 1e-12     # the same score, up to rounding
            shares[b] = np.mean((gains > 0) & ~tie) + 0.5 * np.mean(tie)
    return shares


def guarded(oof: OutOfFold, metric: str, greater_is_better: bool, baseline: str,
            A: np.ndarray, W: np.ndarray, probability: float = GUARD_PROBABILITY,
            random_state=0) -> np.ndarray:
    """The negative-transfer guard on the rows ``W`` (module docstring): rows of
    ``A`` whose :func:`guard_shares` fall below ``probability`` ship the baseline."""
    weak = guard_shares(oof, metric, greater_is_better, baseline, A, W,
                        random_state=random_state) < probability
    A = np.array(A, dtype=float)
    A[weak] = 0.0
    A[weak, oof.index(baseline)] = 1.0
    return A


#: The selection rules the autopilot offers (``Autopilot(selection=...)``).
SELECTION_RULES = {"best": best_single, "ensemble": greedy_ensemble}


@dataclass(frozen=True)
class Choice:
    """What :func:`choose` ships: ``members`` (strategy -> weight) and its estimate;
    the rule's own choice and estimate before the guard; whether the guard
    replaced that choice by the baseline and why (``reason``: "share", the
    guard's statistic ``guard_share`` on all labelled rows fell short; "gain",
    the procedure's corrected gain is not positive; "significance", its
    interval reaches 0 under ``require_significance``); ``procedure``, the
    estimate of rule-then-guard (``estimate`` unless the reason is "gain" or
    "significance", when the baseline's own estimate ships)."""

    members: dict
    estimate: BBCEstimate
    rule_estimate: BBCEstimate
    guarded: bool
    rule_members: dict
    guard_share: float
    reason: str
    procedure: BBCEstimate


def choose(oof: OutOfFold, metric: str, greater_is_better: bool, baseline: str,
           rule: str = "ensemble", n_boot: int = 300, confidence: float = 0.95,
           require_significance: bool = False, guard_probability: float = GUARD_PROBABILITY,
           race_steps=(), random_state=0) -> Choice:
    """The autopilot's choice and its honest estimate (module docstring).

    The procedure estimated is the rule followed by the guard
    (:func:`guarded`), both replayed on every bootstrap sample, so the
    estimate carries the guard's own selection effect.  ``race_steps``: the
    racing steps the run made (:func:`race_survivors`), replayed too; empty
    when every candidate ran every repeat.  After the procedure, a transfer
    whose corrected gain is not positive (with ``require_significance``: whose
    gain interval reaches 0) also gives way to the baseline, whose own
    estimate then ships.
    """
    select_rows = SELECTION_RULES[rule]
    chosen_by_rule = {}

    def by_rule(oof_, W):
        key = (W.shape, W.tobytes())
        if key not in chosen_by_rule:
            allowed = (race_survivors(oof_, metric, greater_is_better, baseline, W, race_steps)
                       if race_steps else None)
            chosen_by_rule[key] = select_rows(oof_, metric, greater_is_better, baseline, W,
                                              allowed)
        return chosen_by_rule[key]

    def procedure(oof_, W):
        return guarded(oof_, metric, greater_is_better, baseline, by_rule(oof_, W), W,
                       guard_probability, random_state)

    full = np.ones((1, len(oof.y)))
    as_members = lambda w: {oof.names[k]: float(w[k]) for k in np.flatnonzero(w)}  # noqa: E731
    rule_members = as_members(by_rule(oof, full)[0])
    share = float(guard_shares(oof, metric, greater_is_better, baseline, by_rule(oof, full),
                               full, random_state=random_state)[0])
    members = as_members(procedure(oof, full)[0])
    estimates = [bbc_estimate(oof, select, metric, greater_is_better, baseline, n_boot=n_boot,
                              confidence=confidence, random_state=random_state)
                 for select in (by_rule, procedure)]
    rule_estimate, estimate = estimates
    reason = "share" if set(members) == {baseline} != set(rule_members) else ""
    if set(members) != {baseline} and estimate.gain <= 0:
        reason = "gain"
    elif set(members) != {baseline} and require_significance and estimate.gain_ci_low <= 0:
        reason = "significance"
    if reason in ("gain", "significance"):
        estimate = bbc_estimate(oof, lambda oof_, W: only(oof_, baseline, W), metric,
                                greater_is_better, baseline, n_boot=n_boot,
                                confidence=confidence, random_state=random_state)
        members = {baseline: 1.0}
    return Choice(members, estimate, rule_estimate, bool(reason), rule_members, share,
                  reason, estimates[1])
