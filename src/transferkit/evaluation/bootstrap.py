"""Out-of-fold predictions, metrics under bootstrap weights, and the bootstrap
bias-corrected estimate of a selection procedure (BBC-CV).

Why.  Choosing the best of ``K`` strategies by their cross-validated scores and
reporting the winner's score is optimistic: the maximum of ``K`` noisy
estimates is biased upwards (the winner's curse), and on a small target it
is biased a lot.  What a user gets is the *procedure* "choose among the
candidates on the labelled target rows, then refit", and that is what must
be estimated.

BBC-CV (Tsamardinos, Greasidou & Borboudakis 2018, "Bootstrapping the
out-of-sample predictions for efficient and accurate cross-validation",
Machine Learning 107:1895-1922) does it without any extra fit.  Let
:math:`\\Pi` hold the out-of-fold predictions of every candidate on the
``n`` labelled target rows (one set per CV repeat).  For ``b = 1..B``:

.. math::

    I_b \\sim \\text{bootstrap sample of } \\{1..n\\}, \\qquad
    O_b = \\{1..n\\} \\setminus I_b,

    c_b = \\text{select}(\\Pi[I_b]), \\qquad
    \\hat s_b = \\text{metric}(y[O_b], \\Pi_{c_b}[O_b]),

and :math:`\\hat s_{BBC} = \\frac1B \\sum_b \\hat s_b`.  The selection runs on
rows it then never scores, so the estimate covers the whole procedure
(including a guard or an ensemble built by the selection).  We draw the
bootstrap within each class (classification), so every class is in every
in-bag sample, and score the same selection against the baseline on the
same out-of-bag rows: :math:`\\hat d_b = \\hat s_b - \\hat s^{base}_b`.

The interval.  As in Tsamardinos et al., the interval is the percentile
interval of the out-of-bag estimates: the :math:`\\alpha/2` and
:math:`1-\\alpha/2` quantiles of :math:`\\hat d_b` for the gain (and of
:math:`\\hat s_b` for the score).  ``prob_gain`` is the share of bootstrap
samples in which the choice beat the baseline, a tie counting half, and
``p_value = 2 min(prob_gain, 1 - prob_gain)``.  An out-of-bag sample holds
about 37% of the rows, so these intervals are wider than the uncertainty of
an estimate from all ``n`` rows; ``benchmarks/bench_autopilot.py`` measured
that narrowing them by :math:`\\sqrt{0.37}` covers the realised held-out gain
too rarely (70% of the draws of one task), and that the percentile interval
covers it in 90-100% of the draws of every task measured.

Metrics under weights.  A bootstrap sample is a vector of row counts, so
every metric of :data:`~transferkit.evaluation.METRICS` is computed here for
many weight vectors at once (:func:`weighted_scores`), from weighted
confusion counts (classification), weighted pairwise orderings (ROC AUC) or
weighted residual sums (regression); they equal
:func:`~transferkit.evaluation.classification_metrics` /
:func:`~transferkit.evaluation.regression_metrics` with ``sample_weight``.

Example
-------
>>> import numpy as np
>>> y = np.array([0, 0, 1, 1])
>>> pred = np.array([[0, 1, 1, 1]])              # one candidate
>>> W = np.array([[1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 1.0, 1.0]])
>>> weighted_scores("accuracy", "classification", y, pred, None, W, n_classes=2).round(2)
array([[0.75, 1.  ]])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transferkit.validation import TransferKitInputError

__all__ = ["OutOfFold", "weighted_scores", "stratified_bootstrap", "BBCEstimate",
           "bbc_estimate", "combine"]

#: Floats in one block of the vectorised computations (about 64 MB).
_BLOCK = 8_000_000


@dataclass
class OutOfFold:
    """Out-of-fold outputs of ``K`` candidates over ``R`` CV repeats.

    Attributes
    ----------
    names : list of str, length K
    task : {"classification", "regression"}
    y : ndarray (n,)
        Class codes (index into ``classes``) or float targets of the labelled
        target rows, in a fixed order.
    pred : ndarray (K, R, n)
        Predicted class codes or values of each candidate, repeat and row.
    proba : ndarray (K, R, n, C) or None
        Class probabilities (columns in ``classes`` order); a candidate
        without ``predict_proba`` has the one-hot of its prediction.
    score : ndarray (K, R, n) or None
        Binary tasks: the positive-class score used by ROC AUC.
    classes : tuple
    pos_code : int or None
    rows : ndarray (n,)
        Row positions of the labelled target rows in ``X``.
    """

    names: list
    task: str
    y: np.ndarray
    pred: np.ndarray
    proba: np.ndarray | None
    score: np.ndarray | None
    classes: tuple
    pos_code: int | None
    rows: np.ndarray

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def index(self, name: str) -> int:
        return list(self.names).index(name)


# --------------------------------------------------------------------- metrics
def _pairwise_auc(y_pos: np.ndarray, score: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Weighted ROC AUC of each row of ``score`` (M, n) under each weight row (B, n).

    :math:`\\sum_{i \\in P, j \\in N} w_i w_j ([s_i > s_j] + \\tfrac12 [s_i = s_j])
    / (\\sum_P w_i \\sum_N w_j)`; NaN where a side has zero weight.
    """
    pos, neg = np.flatnonzero(y_pos), np.flatnonzero(~y_pos)
    Wp, Wn = W[:, pos], W[:, neg]
    denominator = Wp.sum(1) * Wn.sum(1)
    out = np.empty((score.shape[0], W.shape[0]))
    for m in range(score.shape[0]):
        diff = score[m, pos][:, None] - score[m, neg][None, :]
        order = (diff > 0) + 0.5 * (diff == 0)
        out[m] = np.einsum("bi,ij,bj->b", Wp, order, Wn, optimize=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, out / denominator, np.nan)


def _classification_scores(metric, y, pred, proba, score, W, n_classes, pos_code):
    onehot_y = np.eye(n_classes)[y]                               # (n, C)
    onehot_pred = np.eye(n_classes)[pred]                         # (M, n, C)
    correct = (pred == y[None, :])[..., None] * onehot_y[None]    # (M, n, C)
    true_w = W @ onehot_y                                         # (B, C)
    hits = np.einsum("bn,mnc->mbc", W, correct, optimize=True)    # (M, B, C)
    predicted = np.einsum("bn,mnc->mbc", W, onehot_pred, optimize=True)
    T = np.broadcast_to(true_w[None], hits.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(T > 0, hits / T, 0.0)
        precision = np.where(predicted > 0, hits / np.where(predicted > 0, predicted, 1), 0.0)
        f1 = np.where(T + predicted > 0, 2 * hits / np.where(T + predicted > 0, T + predicted, 1),
                      0.0)
    if metric == "accuracy":
        return hits.sum(-1) / true_w.sum(-1)[None]
    present = T > 0
    if metric == "balanced_accuracy":
        return (recall * present).sum(-1) / np.maximum(present.sum(-1), 1)
    seen = present | (predicted > 0)
    macro = {"recall_macro": recall, "precision_macro": precision, "f1_macro": f1}
    if metric in macro:
        return (macro[metric] * seen).sum(-1) / np.maximum(seen.sum(-1), 1)
    if metric in ("recall_pos", "precision_pos", "f1_pos"):
        if pos_code is None:
            raise TransferKitInputError(f"{metric} needs a positive class (a binary task or "
                                        "positive_label).")
        table = {"recall_pos": recall, "precision_pos": precision, "f1_pos": f1}[metric]
        return table[..., pos_code]
    if metric == "roc_auc":
        if n_classes == 2 and pos_code is not None and score is not None:
            return _pairwise_auc(y == pos_code, score, W)
        if proba is None:
            raise TransferKitInputError("roc_auc needs class probabilities or scores.")
        per_class = [_pairwise_auc(y == c, proba[..., c], W) for c in range(n_classes)
                     if (y == c).any() and not (y == c).all()]
        with np.errstate(invalid="ignore"):
            stacked = np.stack(per_class)
            valid = np.isfinite(stacked)
            return np.where(valid.any(0), np.nansum(stacked, 0) / np.maximum(valid.sum(0), 1),
                            np.nan)
    raise TransferKitInputError(f"Unknown classification metric {metric!r}.")


def _regression_scores(metric, y, pred, W):
    err2 = (pred - y[None]) ** 2                                  # (M, n)
    total = W.sum(1)                                              # (B,)
    if metric == "rmse":
        return np.sqrt(err2 @ W.T / total[None])
    if metric == "mae":
        return np.abs(pred - y[None]) @ W.T / total[None]
    if metric == "r2":
        mean = W @ y / total
        ss_tot = W @ (y ** 2) - total * mean ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ss_tot[None] > 1e-12 * np.maximum(W @ (y ** 2), 1e-300)[None],
                            1.0 - (err2 @ W.T) / ss_tot[None], np.nan)
    raise TransferKitInputError(f"Unknown regression metric {metric!r}.")


def weighted_scores(metric: str, task: str, y, pred, proba, W, n_classes: int | None = None,
                    pos_code: int | None = None, score=None) -> np.ndarray:
    """One metric of ``M`` predictions under ``B`` row-weight vectors: shape (M, B).

    Parameters
    ----------
    metric : str
        A name of :data:`~transferkit.evaluation.METRICS`.
    task : {"classification", "regression"}
    y : ndarray (n,)
        Class codes ``0..C-1`` or float targets.
    pred : ndarray (M, n)
        Predicted codes or values.
    proba : ndarray (M, n, C) or None
        Class probabilities (multiclass ROC AUC).
    W : ndarray (B, n)
        Non-negative row weights (bootstrap counts, or 0/1 masks).
    n_classes, pos_code : int
    score : ndarray (M, n), optional
        Positive-class scores (binary ROC AUC).
    """
    y = np.asarray(y)
    pred = np.asarray(pred)
    W = np.asarray(W, dtype=float)
    if pred.ndim != 2 or W.ndim != 2 or pred.shape[1] != y.shape[0] != W.shape[1]:
        raise TransferKitInputError(
            f"Shapes do not agree: y {y.shape}, pred {pred.shape}, W {W.shape}.")
    M, n = pred.shape
    C = n_classes or 1
    per_column = max(1, M * n * C)
    step = max(1, _BLOCK // per_column)
    blocks = []
    for start in range(0, W.shape[0], step):
        Wb = W[start:start + step]
        if task == "classification":
            blocks.append(_classification_scores(metric, y.astype(int), pred.astype(int), proba,
                                                 score, Wb, int(n_classes), pos_code))
        else:
            blocks.append(_regression_scores(metric, y.astype(float), pred.astype(float), Wb))
    return np.concatenate(blocks, axis=1)


# ------------------------------------------------------------------ bootstrap
def stratified_bootstrap(y, n_boot: int, random_state, stratify: bool = True) -> np.ndarray:
    """Bootstrap row counts (``n_boot``, n): each class resampled within itself.

    >>> stratified_bootstrap([0, 0, 1, 1, 1], 3, 0).sum(axis=1)
    array([5., 5., 5.])
    """
    y = np.asarray(y)
    rng = np.random.default_rng(random_state)
    n = y.shape[0]
    counts = np.zeros((n_boot, n))
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(n)]
    for rows in groups:
        draws = rng.integers(0, rows.size, size=(n_boot, rows.size))
        for b in range(n_boot):
            counts[b] += np.bincount(rows[draws[b]], minlength=n)
    return counts


def combine(oof: OutOfFold, A: np.ndarray):
    """Predictions of ``B`` combinations of the candidates: (B, R, n) predictions and
    (B, R, n) positive scores (binary) or (B, R, n, C) probabilities.

    ``A`` (B, K) holds non-negative combination weights; a one-hot row is that
    candidate alone (its own predictions), any other row is the weighted mean
    of the candidates' probabilities (classification, predicted class =
    argmax) or predictions (regression).
    """
    A = np.asarray(A, dtype=float)
    single = (A > 0).sum(1) == 1
    pick = A.argmax(1)
    if oof.task == "regression":
        mixed = np.einsum("bk,krn->brn", A / A.sum(1, keepdims=True), oof.pred)
        pred = np.where(single[:, None, None], oof.pred[pick], mixed)
        return pred, None
    proba = np.einsum("bk,krnc->brnc", A / A.sum(1, keepdims=True), oof.proba, optimize=True)
    pred = np.where(single[:, None, None], oof.pred[pick], proba.argmax(-1))
    if oof.score is not None:
        pos = proba[..., oof.pos_code]
        score = np.where(single[:, None, None], oof.score[pick], pos)
        return pred, score
    return pred, proba


def _score_combinations(oof: OutOfFold, metric: str, A: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Score of combination ``A[b]`` under weights ``W[b]``, mean over repeats: (B,)."""
    pred, extra = combine(oof, A)
    B, R = pred.shape[:2]
    out = np.zeros(B)
    for b in range(B):
        binary = extra is not None and extra.ndim == 3
        values = weighted_scores(
            metric, oof.task, oof.y, pred[b], None if binary or extra is None else extra[b],
            W[b:b + 1], oof.n_classes or None, oof.pos_code,
            score=extra[b] if binary else None)
        out[b] = np.nanmean(values) if np.isfinite(values).any() else np.nan
    return out


@dataclass(frozen=True)
class BBCEstimate:
    """The bootstrap bias-corrected estimate of a selection procedure.

    ``naive`` is the apparent score of the procedure's choice on all rows (the
    optimistic figure), ``corrected`` the BBC-CV estimate; ``gain`` is oriented
    so that positive means better than the baseline.
    """

    naive: float
    corrected: float
    corrected_ci_low: float
    corrected_ci_high: float
    naive_gain: float
    gain: float
    gain_ci_low: float
    gain_ci_high: float
    p_value: float
    #: share of bootstrap samples in which the choice beat the baseline (ties half)
    prob_gain: float
    n_boot: int
    confidence: float
    #: how often each candidate (or "ensemble") was chosen over the bootstraps
    choice_frequency: dict


def bbc_estimate(oof: OutOfFold, select, metric: str, greater_is_better: bool, baseline: str,
                 n_boot: int = 300, confidence: float = 0.95,
                 random_state=0) -> BBCEstimate:
    """BBC-CV estimate of ``select`` and its gain over ``baseline`` (module docstring).

    Parameters
    ----------
    oof : OutOfFold
    select : callable(OutOfFold, W (B, n)) -> A (B, K)
        The selection procedure: given in-bag row weights, the combination of
        candidates it would ship (a one-hot row for a single candidate).
    metric : str
    greater_is_better : bool
    baseline : str
        Name of the baseline candidate (target-only).
    n_boot : int
        Bootstrap samples.
    """
    n = oof.y.shape[0]
    stratify = oof.task == "classification"
    W_in = stratified_bootstrap(oof.y, n_boot, random_state, stratify)
    W_out = (W_in == 0).astype(float)
    keep = W_out.sum(1) > 0
    if stratify:  # the out-of-bag rows must hold two classes for most metrics
        present = (W_out @ np.eye(oof.n_classes)[oof.y.astype(int)] > 0).sum(1)
        keep &= present >= min(2, oof.n_classes)
    W_in, W_out = W_in[keep], W_out[keep]
    if W_in.shape[0] < 10:
        raise TransferKitInputError(
            f"Only {W_in.shape[0]} usable bootstrap samples of {n} labelled target rows; "
            "label more target rows.")
    sign = 1.0 if greater_is_better else -1.0
    A = select(oof, W_in)
    K = len(oof.names)
    base = np.zeros((A.shape[0], K))
    base[:, oof.index(baseline)] = 1.0
    chosen = _score_combinations(oof, metric, A, W_out)
    reference = _score_combinations(oof, metric, base, W_out)
    ok = np.isfinite(chosen) & np.isfinite(reference)
    chosen, reference, A_ok, W_ok = chosen[ok], reference[ok], A[ok], W_out[ok]
    gains = sign * (chosen - reference)
    tail = (1.0 - confidence) / 2
    gain_low, gain_high = np.quantile(gains, [tail, 1.0 - tail])
    score_low, score_high = np.quantile(chosen, [tail, 1.0 - tail])
    full = np.ones((1, n))
    A_full = select(oof, full)
    naive = float(_score_combinations(oof, metric, A_full, full)[0])
    naive_base = float(_score_combinations(oof, metric, base[:1], full)[0])
    # a tie (the same choice as the baseline on those rows) counts half either way
    prob_gain = float(np.mean(gains > 0) + 0.5 * np.mean(gains == 0))
    p_value = float(min(1.0, 2 * min(prob_gain, 1.0 - prob_gain)))
    names = np.array(list(oof.names) + ["ensemble"])
    labels = np.where((A_ok > 0).sum(1) == 1, A_ok.argmax(1), K)
    frequency = {str(names[k]): int(c) for k, c in zip(*np.unique(labels, return_counts=True))}
    return BBCEstimate(
        naive=naive, corrected=float(chosen.mean()),
        corrected_ci_low=float(score_low), corrected_ci_high=float(score_high),
        naive_gain=sign * (naive - naive_base), gain=float(gains.mean()),
        gain_ci_low=float(gain_low), gain_ci_high=float(gain_high), p_value=p_value,
        prob_gain=prob_gain,
        n_boot=int(ok.sum()), confidence=confidence, choice_frequency=frequency,
    )
