"""TrAdaBoost family: boosting that re-weights source rows by their usefulness.

* :class:`TrAdaBoostClassifier` (Dai, Yang, Xue & Yu 2007, "Boosting for
  transfer learning", ICML).
* :class:`TrAdaBoostR2` and :class:`TwoStageTrAdaBoostR2` (Pardoe & Stone
  2010, "Boosting for regression transfer", ICML), built on AdaBoost.R2
  (Drucker 1997, "Improving regressors using boosting techniques", ICML).

All three train on the labelled source rows (``n`` of them) and the labelled
target rows (``m``; at least one is required) of a tagged ``y``; unlabelled
rows are ignored.  Source rows that the current hypothesis gets wrong lose
weight, target rows it gets wrong gain weight, so the ensemble gradually
relies on the source rows that agree with the target.

The base learner gets ``p^t`` as ``sample_weight`` rescaled to mean 1 (the
same distribution; a regularised learner such as logistic regression would
otherwise see its penalty blown up by weights summing to 1).

Scale.  Each round fits the base learner on the current distribution
``p^t`` over the ``n + m`` rows.  Up to ``max_samples`` rows (default
5,000) ``p^t`` is passed as ``sample_weight`` (exact, the papers' rule).
Above it, the learner is fitted on ``max_samples`` rows drawn with
replacement with probabilities ``p^t`` ("boosting by resampling", Freund &
Schapire 1997), while the errors and weight updates still use every row
exactly.  The trade-off is sampling noise in each hypothesis (the resample
is large, so the effect on accuracy is small); pass ``max_samples=None`` to
force the exact path.

Example
-------
>>> import numpy as np
>>> from transferkit.instance_based.tradaboost import TrAdaBoostClassifier
>>> rng = np.random.default_rng(0)
>>> Xs = rng.normal(size=(200, 2)); ys = (Xs[:, 0] > 0).astype(int)
>>> Xt = rng.normal(size=(30, 2)); yt = (Xt[:, 0] > 0.5).astype(int)
>>> model = TrAdaBoostClassifier(n_estimators=10, random_state=0)
>>> model.fit_domains(Xs, ys, Xt, yt).predict(Xt).shape
(30,)
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.model_selection import KFold
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from transferkit.domains import DomainAwareMixin, read_domains
from transferkit.validation import TransferKitInputError, check_matrix

__all__ = ["TrAdaBoostClassifier", "TrAdaBoostR2", "TwoStageTrAdaBoostR2"]

_EPS_FLOOR = 1e-10
_LOSSES = ("linear", "square", "exponential")


# --------------------------------------------------------------------------- helpers
def _labelled_rows(self, X, y, regression: bool):
    """Validate ``X``/tagged ``y``; return (X_rows, labels, is_target, rows, n_rows)."""
    info = read_domains(y, n_rows=len(X))
    X_arr = check_matrix(X, name="X", dtype=np.float32)
    name = type(self).__name__
    if not info.labelled_target.any():
        raise TransferKitInputError(
            f"{name} needs labelled target rows (it measures each hypothesis' error on "
            "them); the target has none. Label some target rows, or use an unsupervised "
            "method such as ImportanceWeighted."
        )
    if not info.labelled_source.any():
        raise TransferKitInputError(f"{name} needs labelled source rows; the source has none.")
    rows = np.flatnonzero(info.labelled)
    labels = info.labels_of(rows)
    if regression:
        try:
            labels = labels.astype(np.float64)
        except (TypeError, ValueError):
            raise TransferKitInputError(
                f"{name} is a regressor but the labels are not numeric."
            ) from None
    return X_arr[rows], labels, info.is_target[rows], rows, X_arr.shape[0]


def _check_base(estimator, default):
    est = clone(estimator) if estimator is not None else default
    if not has_fit_parameter(est, "sample_weight"):
        raise TransferKitInputError(
            f"The base estimator {type(est).__name__} takes no sample_weight in fit; "
            "boosting needs one (e.g. a decision tree or a linear model)."
        )
    return est


def _check_common(self):
    if not isinstance(self.n_estimators, (int, np.integer)) or self.n_estimators < 1:
        raise TransferKitInputError(
            f"n_estimators must be a positive integer, got {self.n_estimators!r}."
        )
    ms = self.max_samples
    if ms is not None and (not isinstance(ms, (int, np.integer)) or ms < 2):
        raise TransferKitInputError(
            f"max_samples must be None (always exact) or an integer >= 2, got {ms!r}."
        )


def _fit_on_distribution(est, X, y, p, max_samples, rng):
    """Fit ``est`` on distribution ``p``: as sample_weight, or by resampling.

    The weights passed are ``p * len(p)`` (mean 1), not ``p`` itself: the same
    distribution, but a regularised learner (logistic regression, ridge) then
    sees weighted *counts* and keeps its usual regularisation strength.
    """
    if max_samples is not None and len(p) > max_samples:
        pick = rng.choice(len(p), size=max_samples, replace=True, p=p)
        # a classification resample with a single class falls back to the exact fit
        if y.dtype.kind == "f" or np.unique(y[pick]).size > 1:
            est.fit(X[pick], y[pick])
            return est
    est.fit(X, y, sample_weight=p * len(p))
    return est


def _seed(est, rng):
    """Give an unseeded base learner a seed drawn from ``rng`` (a fixed seed is kept)."""
    params = est.get_params()
    if "random_state" in params and params["random_state"] is None:
        est.set_params(random_state=rng.randint(np.iinfo(np.int32).max))
    return est


def _fit_round(base, X, y, w, max_samples, rng):
    """One boosting round: a seeded clone of ``base`` fitted on ``p = w / sum(w)``.

    Returns the fitted learner and ``p``.
    """
    p = w / w.sum()
    est = _seed(clone(base), rng)
    _fit_on_distribution(est, X, y, p, max_samples, rng)
    return est, p


def _tradaboost_start(n_estimators, is_tgt):
    """TrAdaBoost's set-up: ``(N, beta, w^1)`` with ``beta = 1 / (1 + sqrt(2 ln n / N))``
    (``n`` source rows) and uniform ``w^1``."""
    N = int(n_estimators)
    n_src = int((~is_tgt).sum())
    beta = 1.0 / (1.0 + math.sqrt(2.0 * math.log(n_src) / N))
    return N, beta, np.full(len(is_tgt), 1.0 / len(is_tgt))


def _tradaboost_update(w, is_tgt, e, beta, beta_t):
    """``w_i beta^{e_i}`` (source), ``w_i beta_t^{-e_i}`` (target), normalised."""
    w = w.copy()
    w[~is_tgt] *= beta ** e[~is_tgt]
    w[is_tgt] *= beta_t ** (-e[is_tgt])
    w /= w.sum()
    return w


def _set_row_weights(self, w, rows, n_all, n_features):
    """Set ``sample_weight_`` (``w`` on the labelled rows, 0 elsewhere), ``n_features_in_``."""
    full = np.zeros(n_all)
    full[rows] = w
    self.sample_weight_ = full
    self.n_features_in_ = n_features


def _check_predict_X(self, X, fitted_attr: str = "estimators_"):
    """Check that ``self`` is fitted (``fitted_attr`` set) and ``X`` has its feature count."""
    check_is_fitted(self, fitted_attr)
    X_arr = check_matrix(X, name="X", dtype=np.float32, n_features=self.n_features_in_,
                         fitted_by=type(self).__name__)
    return X_arr


def _adjusted_error(abs_err: np.ndarray, loss: str) -> np.ndarray:
    """AdaBoost.R2's adjusted error in [0, 1] (Drucker 1997)."""
    d_max = abs_err.max()
    e = abs_err / d_max if d_max > 0 else np.zeros_like(abs_err)
    if loss == "square":
        return e**2
    if loss == "exponential":
        return 1.0 - np.exp(-e)
    return e


def _check_loss(loss):
    if loss not in _LOSSES:
        raise TransferKitInputError(f"loss must be one of {_LOSSES}, got {loss!r}.")


def weighted_median(predictions: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Row-wise weighted median as in AdaBoost.R2.

    For each row, the smallest prediction ``h_t(x)`` such that the weights of
    the predictions ``<= h_t(x)`` sum to at least half the total weight.
    ``predictions`` has shape (n_rows, T), ``weights`` shape (T,).
    """
    order = np.argsort(predictions, axis=1, kind="stable")
    sorted_pred = np.take_along_axis(predictions, order, axis=1)
    cum = np.cumsum(weights[order], axis=1)
    idx = np.argmax(cum >= 0.5 * weights.sum() - 1e-12 * abs(weights.sum()), axis=1)
    return sorted_pred[np.arange(len(sorted_pred)), idx]


# --------------------------------------------------------------------------- TrAdaBoost
class TrAdaBoostClassifier(DomainAwareMixin, ClassifierMixin, BaseEstimator):
    """TrAdaBoost (Dai, Yang, Xue & Yu 2007, "Boosting for transfer learning", ICML).

    With ``n`` labelled source rows, ``m`` labelled target rows and ``N``
    rounds, starting from uniform weights ``w^1``, for ``t = 1..N``:

    1. ``p^t = w^t / sum(w^t)``; fit the base learner ``h_t`` on all
       ``n + m`` rows with distribution ``p^t``;
    2. error on the *target* rows only:
       ``eps_t = sum_{i target} w_i^t |h_t(x_i) - c(x_i)| / sum_{i target} w_i^t``;
    3. ``beta_t = eps_t / (1 - eps_t)`` and
       ``beta = 1 / (1 + sqrt(2 ln n / N))``;
    4. ``w_i^{t+1} = w_i^t beta^{|h_t(x_i) - c(x_i)|}`` for source rows
       (mistakes lose weight) and
       ``w_i^{t+1} = w_i^t beta_t^{-|h_t(x_i) - c(x_i)|}`` for target rows
       (mistakes gain weight).

    Final hypothesis (binary, classes coded 0/1): predict 1 iff
    ``prod_{t=ceil(N/2)}^N beta_t^{-h_t(x)} >= prod_{t=ceil(N/2)}^N beta_t^{-1/2}``,
    i.e. a vote of the second half of the rounds weighted by ``ln(1/beta_t)``
    (ties go to the second class, as in the paper's ``>=``).

    Departures from the paper.  The paper assumes ``0 < eps_t < 1/2``; here
    ``eps_t`` is clipped to ``[1e-10, 1/2]`` (a perfect hypothesis would give
    infinite weights; one no better than chance gets vote 0 and leaves the
    target weights unchanged).  If every voting round has vote 0, the voters
    count equally.  Multi-class (the paper is binary): ``|h - c|`` becomes
    the 0/1 mistake indicator (SAMME-style weighted error on the target rows,
    with the same clipping at 1/2 rather than SAMME's ``1 - 1/K``), and the
    final hypothesis is the plurality vote of rounds ``ceil(N/2)..N``
    weighted by ``ln(1/beta_t)``, which reduces to the paper's rule for two
    classes.

    Parameters
    ----------
    estimator : sklearn classifier with ``sample_weight`` in ``fit``, optional
        Default: ``DecisionTreeClassifier(max_depth=3)``.
    n_estimators : int, default=10
        Number of rounds ``N``.
    max_samples : int or None, default=5000
        Above this many training rows each round fits on a weighted resample
        of this size (see the module docstring); ``None``: always exact.
    random_state : int, RandomState or None
        Seeds the base learners and the resampling.

    Attributes
    ----------
    classes_ : ndarray of the class labels.
    estimators_ : list of the ``N`` fitted hypotheses.
    estimator_errors_ : ndarray (N,), ``eps_t`` before clipping.
    betas_ : ndarray (N,), ``beta_t``.
    beta_source_ : float, ``beta``.
    voting_start_ : int, 0-based index of round ``ceil(N/2)``.
    sample_weight_ : ndarray (n_rows,), final normalised weights ``w^{N+1}``
        per row of ``X`` (0 for unlabelled rows).

    Examples
    --------
    >>> import numpy as np
    >>> from transferkit.domains import stack_domains
    >>> rng = np.random.default_rng(1)
    >>> Xs = rng.normal(size=(100, 2)); Xt = rng.normal(size=(40, 2))
    >>> X, y = stack_domains(Xs, Xs[:, 0] > 0, Xt, Xt[:, 1] > 0)
    >>> clf = TrAdaBoostClassifier(n_estimators=6, random_state=0).fit(X, y)
    >>> len(clf.estimators_), clf.voting_start_
    (6, 2)
    """

    def __init__(self, estimator=None, n_estimators: int = 10, max_samples=5_000,
                 random_state=None):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X, y):
        _check_common(self)
        X_rows, labels, is_tgt, rows, n_all = _labelled_rows(self, X, y, regression=False)
        try:
            classes, codes = np.unique(np.asarray(labels.tolist()), return_inverse=True)
        except TypeError:
            raise TransferKitInputError(
                "TrAdaBoostClassifier: labels of mixed types cannot be ordered; use one type."
            ) from None
        if len(classes) < 2:
            raise TransferKitInputError(
                f"TrAdaBoostClassifier: the labelled rows have a single class "
                f"({classes[0]!r}); a classifier needs at least two."
            )
        rng = check_random_state(self.random_state)
        base = _check_base(self.estimator, DecisionTreeClassifier(max_depth=3))
        N, beta, w = _tradaboost_start(self.n_estimators, is_tgt)
        estimators, errors, betas = [], [], []
        for _ in range(N):
            est, _ = _fit_round(base, X_rows, codes, w, self.max_samples, rng)
            miss = (np.asarray(est.predict(X_rows)) != codes).astype(np.float64)
            w_t = w[is_tgt]
            eps = float(np.dot(w_t, miss[is_tgt]) / w_t.sum())
            eps_c = min(max(eps, _EPS_FLOOR), 0.5)
            beta_t = eps_c / (1.0 - eps_c)
            w = _tradaboost_update(w, is_tgt, miss, beta, beta_t)
            estimators.append(est)
            errors.append(eps)
            betas.append(beta_t)
        self.classes_ = classes
        self.estimators_ = estimators
        self.estimator_errors_ = np.asarray(errors)
        self.betas_ = np.asarray(betas)
        self.beta_source_ = beta
        self.voting_start_ = math.ceil(N / 2) - 1
        _set_row_weights(self, w, rows, n_all, X_rows.shape[1])
        return self

    def _votes(self, X):
        X_arr = _check_predict_X(self, X)
        voters = self.estimators_[self.voting_start_:]
        alpha = np.log(1.0 / self.betas_[self.voting_start_:])
        if alpha.sum() <= 0:
            alpha = np.ones_like(alpha)
        votes = np.zeros((X_arr.shape[0], len(self.classes_)))
        rows = np.arange(X_arr.shape[0])
        for a, est in zip(alpha, voters):
            votes[rows, np.asarray(est.predict(X_arr), dtype=np.int64)] += a
        return votes, alpha.sum()

    def predict(self, X):
        votes, total = self._votes(X)
        if len(self.classes_) == 2:
            return self.classes_[(votes[:, 1] >= 0.5 * total).astype(np.int64)]
        return self.classes_[np.argmax(votes, axis=1)]

    def predict_proba(self, X):
        """Share of the (weighted) vote of each class."""
        votes, total = self._votes(X)
        return votes / total

    def decision_function(self, X):
        """Binary: ``sum_t ln(1/beta_t) (h_t(x) - 1/2) / sum_t ln(1/beta_t)`` (>= 0 means the
        second class); multi-class: the vote shares."""
        votes, total = self._votes(X)
        if len(self.classes_) == 2:
            return (votes[:, 1] - 0.5 * total) / total
        return votes / total


# --------------------------------------------------------------------------- R2
class _R2Base(DomainAwareMixin, RegressorMixin, BaseEstimator):
    def _base(self):
        return _check_base(self.estimator, DecisionTreeRegressor(max_depth=3))

    def predict(self, X):
        """Weighted median of the voting hypotheses, weights ``ln(1/beta_t)``."""
        X_arr = _check_predict_X(self, X)
        voters = self.estimators_[self.voting_start_:]
        weights = np.asarray(self.estimator_weights_[self.voting_start_:], dtype=float)
        if len(voters) == 1 or weights.sum() <= 0:
            weights = np.ones(len(voters))
        preds = np.column_stack([np.asarray(e.predict(X_arr), dtype=float) for e in voters])
        return weighted_median(preds, weights)


class TrAdaBoostR2(_R2Base):
    """TrAdaBoost.R2 (Pardoe & Stone 2010, "Boosting for regression transfer", ICML).

    TrAdaBoost's weight updates with AdaBoost.R2's adjusted error (Drucker
    1997).  With ``n`` labelled source rows and ``m`` labelled target rows,
    uniform ``w^1``, for ``t = 1..N``:

    1. ``p^t = w^t / sum(w^t)``; fit ``h_t`` on all rows with ``p^t``;
    2. adjusted error per row, ``D_t = max_i |y_i - h_t(x_i)|`` over all rows:
       ``e_i = |y_i - h_t(x_i)| / D_t`` (linear), its square (square) or
       ``1 - exp(-|y_i - h_t(x_i)| / D_t)`` (exponential);
    3. target error ``eps_t = sum_{i target} w_i^t e_i / sum_{i target} w_i^t``;
       if ``eps_t >= 1/2`` stop and set ``N = t - 1`` (this ``h_t`` is
       discarded, unless it is the first);
    4. ``beta_t = eps_t / (1 - eps_t)``, ``beta = 1 / (1 + sqrt(2 ln n / N))``;
    5. ``w_i^{t+1} = w_i^t beta^{e_i}`` (source), ``w_i^t beta_t^{-e_i}`` (target).

    Output: the weighted median of ``h_t(x)`` for ``t = ceil(N/2)..N`` with
    weights ``ln(1/beta_t)``.  ``eps_t`` is floored at ``1e-10`` (a
    hypothesis exact on the target would get infinite weight).

    Parameters
    ----------
    estimator : sklearn regressor with ``sample_weight``, optional
        Default: ``DecisionTreeRegressor(max_depth=3)``.
    n_estimators : int, default=10
    loss : {"linear", "square", "exponential"}, default="linear"
    max_samples : int or None, default=5000
        See the module docstring.
    random_state : int, RandomState or None

    Attributes
    ----------
    estimators_, estimator_errors_ (``eps_t``), betas_, estimator_weights_
    (``ln(1/beta_t)``), beta_source_, voting_start_, sample_weight_
    (final normalised weights per row of ``X``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Xs = rng.normal(size=(100, 1)); Xt = rng.normal(size=(20, 1))
    >>> reg = TrAdaBoostR2(n_estimators=5, random_state=0)
    >>> reg.fit_domains(Xs, 2 * Xs[:, 0], Xt, 2 * Xt[:, 0] + 1).predict(Xt).shape
    (20,)
    """

    def __init__(self, estimator=None, n_estimators: int = 10, loss: str = "linear",
                 max_samples=5_000, random_state=None):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.loss = loss
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X, y):
        _check_common(self)
        _check_loss(self.loss)
        X_rows, labels, is_tgt, rows, n_all = _labelled_rows(self, X, y, regression=True)
        rng = check_random_state(self.random_state)
        base = self._base()
        N, beta, w = _tradaboost_start(self.n_estimators, is_tgt)
        estimators, errors, betas = [], [], []
        for _ in range(N):
            est, _ = _fit_round(base, X_rows, labels, w, self.max_samples, rng)
            e = _adjusted_error(np.abs(np.asarray(est.predict(X_rows), float) - labels),
                                self.loss)
            w_t = w[is_tgt]
            eps = float(np.dot(w_t, e[is_tgt]) / w_t.sum())
            if eps >= 0.5:
                if not estimators:  # keep a first hypothesis: there is nothing else
                    estimators.append(est)
                    errors.append(eps)
                    betas.append(1.0)
                break
            eps_c = max(eps, _EPS_FLOOR)
            beta_t = eps_c / (1.0 - eps_c)
            w = _tradaboost_update(w, is_tgt, e, beta, beta_t)
            estimators.append(est)
            errors.append(eps)
            betas.append(beta_t)
        n_used = len(estimators)
        self.estimators_ = estimators
        self.estimator_errors_ = np.asarray(errors)
        self.betas_ = np.asarray(betas)
        self.estimator_weights_ = np.log(1.0 / self.betas_)
        self.beta_source_ = beta
        self.voting_start_ = max(math.ceil(n_used / 2) - 1, 0)
        _set_row_weights(self, w, rows, n_all, X_rows.shape[1])
        return self


class _FrozenSourceR2:
    """AdaBoost.R2' of Pardoe & Stone (2010): AdaBoost.R2 whose source weights stay fixed.

    Drucker's AdaBoost.R2 with ``L_bar = sum_i p_i e_i`` over all rows,
    ``beta = L_bar / (1 - L_bar)``, stop when ``L_bar >= 1/2``, and the update
    ``w_i <- w_i beta^{1 - e_i}`` applied to target rows only.
    """

    def __init__(self, base, n_estimators, loss, max_samples, rng):
        self.base, self.n_estimators, self.loss = base, n_estimators, loss
        self.max_samples, self.rng = max_samples, rng

    def fit(self, X, y, w, is_tgt):
        w = np.asarray(w, dtype=float).copy()
        self.estimators_, betas = [], []
        for _ in range(self.n_estimators):
            est, p = _fit_round(self.base, X, y, w, self.max_samples, self.rng)
            e = _adjusted_error(np.abs(np.asarray(est.predict(X), float) - y), self.loss)
            l_bar = float(np.dot(p, e))
            if l_bar >= 0.5:
                if not self.estimators_:
                    self.estimators_.append(est)
                    betas.append(1.0)
                break
            beta = max(l_bar, _EPS_FLOOR) / (1.0 - max(l_bar, _EPS_FLOOR))
            w[is_tgt] *= beta ** (1.0 - e[is_tgt])
            self.estimators_.append(est)
            betas.append(beta)
        self.estimator_weights_ = np.log(1.0 / np.asarray(betas))
        return self

    def predict(self, X):
        weights = self.estimator_weights_
        if len(weights) == 1 or weights.sum() <= 0:
            weights = np.ones(len(weights))
        preds = np.column_stack([np.asarray(e.predict(X), float) for e in self.estimators_])
        return weighted_median(preds, weights)


def _solve_beta(w_src, e_src, target_mass, share):
    """Find ``beta`` in [0, 1] with ``S(beta) = sum w_src beta^e`` giving target share ``share``.

    Needs ``target_mass / (target_mass + S(beta)) = share``; ``S`` increases
    with ``beta``, so bisection.  Returns (beta, new source weights).
    """
    if share >= 1.0 - 1e-12:
        return 0.0, np.zeros_like(w_src)
    wanted = target_mass * (1.0 - share) / share

    def mass(b):
        return float(np.dot(w_src, b**e_src)) if b > 0 else float(w_src[e_src == 0].sum())

    if mass(1.0) <= wanted:
        return 1.0, w_src.copy()
    if mass(0.0) >= wanted:  # unreachable by beta alone: rows with zero error remain
        scale = wanted / mass(0.0)
        return 0.0, np.where(e_src == 0, w_src * scale, 0.0)
    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if mass(mid) < wanted:
            lo = mid
        else:
            hi = mid
    b = 0.5 * (lo + hi)
    return b, w_src * b**e_src


class TwoStageTrAdaBoostR2(_R2Base):
    """Two-stage TrAdaBoost.R2 (Pardoe & Stone 2010, "Boosting for regression transfer").

    Stage 1 gradually moves weight from the source to the target; at each
    of ``S`` steps a stage-2 model is trained and scored by cross-validation
    on the target; the best one is returned.  With uniform ``w^1`` over the
    ``n`` source and ``m`` target rows, for ``t = 1..S``:

    1. ``model_t`` = AdaBoost.R2' (AdaBoost.R2 with the source weights
       frozen, ``N`` rounds) on all rows with weights ``w^t``;
       ``errors_t`` = ``F``-fold cross-validated mean squared error of the
       same procedure on the target rows (each fold trains on every source
       row plus the other target folds, with their ``w^t``);
    2. fit ``h_t`` on all rows with ``w^t``; adjusted errors ``e_i`` as in
       AdaBoost.R2;
    3. ``w_i^{t+1} = w_i^t beta_t^{e_i} / Z_t`` for source rows and
       ``w_i^t / Z_t`` for target rows, with ``beta_t`` found by bisection so
       that the target rows hold a share
       ``m/(n+m) + t/(S-1) (1 - m/(n+m))`` of the total weight.

    Output: ``model_t`` with the smallest ``errors_t``.

    Departures: the paper's optional early stop of stage 1 is not used (all
    ``S`` steps run; the last step trains on target weight only); when
    bisection cannot reach the share (source rows with zero error keep
    weight for any ``beta_t``) those rows are scaled down to reach it.

    Parameters
    ----------
    estimator : sklearn regressor with ``sample_weight``, optional
        Default: ``DecisionTreeRegressor(max_depth=3)``.
    n_steps : int, default=5
        Stage-1 steps ``S``.
    n_estimators : int, default=10
        AdaBoost.R2' rounds ``N`` of each stage-2 model.
    n_folds : int, default=3
        Target cross-validation folds ``F`` (at most the number of labelled
        target rows; with one labelled target row no CV is possible and the
        last step's model is kept).
    loss : {"linear", "square", "exponential"}, default="linear"
    max_samples : int or None, default=5000
        See the module docstring (stage 1 fits ``S (F + 1) N + S - 1``
        learners).
    random_state : int, RandomState or None

    Attributes
    ----------
    estimators_, estimator_weights_ : the chosen AdaBoost.R2' ensemble.
    cv_errors_ : ndarray (S,), ``errors_t``.
    best_step_ : int, 0-based index of the chosen step.
    chosen_params_ : dict, ``{"step": best_step_}`` when target CV chose it, else
        empty (fewer than 2 labelled target rows: the last step).
    betas_ : ndarray (S - 1,), stage-1 ``beta_t``.
    sample_weight_ : ndarray (n_rows,), the chosen step's weights ``w^t``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Xs = rng.normal(size=(100, 1)); Xt = rng.normal(size=(20, 1))
    >>> reg = TwoStageTrAdaBoostR2(n_steps=3, n_estimators=3, random_state=0)
    >>> reg.fit_domains(Xs, 2 * Xs[:, 0], Xt, 2 * Xt[:, 0] + 1).cv_errors_.shape
    (3,)
    """

    def __init__(self, estimator=None, n_steps: int = 5, n_estimators: int = 10,
                 n_folds: int = 3, loss: str = "linear", max_samples=5_000,
                 random_state=None):
        self.estimator = estimator
        self.n_steps = n_steps
        self.n_estimators = n_estimators
        self.n_folds = n_folds
        self.loss = loss
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X, y):
        _check_common(self)
        _check_loss(self.loss)
        for name in ("n_steps", "n_folds"):
            value = getattr(self, name)
            low = 1 if name == "n_steps" else 2
            if not isinstance(value, (int, np.integer)) or value < low:
                raise TransferKitInputError(
                    f"{name} must be an integer >= {low}, got {value!r}."
                )
        X_rows, labels, is_tgt, rows, n_all = _labelled_rows(self, X, y, regression=True)
        rng = check_random_state(self.random_state)
        base = self._base()
        S, N = int(self.n_steps), int(self.n_estimators)
        n_tot, m = len(labels), int(is_tgt.sum())
        tgt_idx, src_idx = np.flatnonzero(is_tgt), np.flatnonzero(~is_tgt)
        n_folds = min(int(self.n_folds), m)
        folds = (list(KFold(n_folds, shuffle=True,
                            random_state=rng.randint(np.iinfo(np.int32).max))
                      .split(tgt_idx)) if n_folds >= 2 else [])
        w = np.full(n_tot, 1.0 / n_tot)
        cv_errors, betas = [], []
        best = (np.inf, None, None, -1)
        for t in range(1, S + 1):
            model = _FrozenSourceR2(base, N, self.loss, self.max_samples, rng).fit(
                X_rows, labels, w, is_tgt)
            if folds:
                sq = 0.0
                for tr, te in folds:
                    train = np.concatenate([src_idx, tgt_idx[tr]])
                    test = tgt_idx[te]
                    sub = _FrozenSourceR2(base, N, self.loss, self.max_samples, rng).fit(
                        X_rows[train], labels[train], w[train], is_tgt[train])
                    sq += float(np.sum((sub.predict(X_rows[test]) - labels[test]) ** 2))
                err = sq / m
            else:
                err = -float(t)  # no CV possible: prefer the latest (most target) step
            cv_errors.append(err if folds else np.nan)
            if err < best[0]:
                best = (err, model, w.copy(), t - 1)
            if t == S:
                break
            h, _ = _fit_round(base, X_rows, labels, w, self.max_samples, rng)
            e = _adjusted_error(np.abs(np.asarray(h.predict(X_rows), float) - labels),
                                self.loss)
            share = m / n_tot + t / (S - 1) * (1.0 - m / n_tot)
            beta_t, new_src = _solve_beta(w[~is_tgt], e[~is_tgt], w[is_tgt].sum(), share)
            w = w.copy()
            w[~is_tgt] = new_src
            w /= w.sum()
            betas.append(beta_t)
        _, model, w_best, step = best
        self.estimators_ = model.estimators_
        self.estimator_weights_ = model.estimator_weights_
        self.voting_start_ = 0
        self.cv_errors_ = np.asarray(cv_errors, dtype=float)
        self.best_step_ = step
        self.chosen_params_ = {"step": step} if folds else {}
        self.betas_ = np.asarray(betas)
        _set_row_weights(self, w_best, rows, n_all, X_rows.shape[1])
        return self
