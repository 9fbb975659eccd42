"""Continued boosting: a source gradient-boosted model, then more trees on the target.

A gradient-boosted model ``F_s`` is fitted on the labelled source rows
(default: scikit-learn's ``HistGradientBoosting*`` with early stopping on a
10% validation split of the source rows; see "Default source model" below).
Boosting then simply
*continues* on the labelled target rows: starting from ``F_0(x) = F_s(x)``
(the source model's raw score: the prediction for regression, the log-odds
or multinomial logits for classification), for ``r = 1..R``

.. math::

    g_i = -\\partial \\ell(y_i, F) / \\partial F \\big|_{F = F_{r-1}(x_i)}, \\qquad
    h_r = \\text{tree fitted to } g, \\qquad
    F_r = F_{r-1} + \\nu \\, \\gamma_{r}(\\text{leaf of } h_r(x)),

(Friedman 2001, "Greedy function approximation: a gradient boosting
machine", Ann. Statist.), with leaf values ``gamma`` the Newton steps:
the mean residual (squared loss), ``sum r / sum p(1-p)`` (binary log-loss)
and ``(K-1)/K * sum r_k / sum |r_k|(1-|r_k|)`` per class (multinomial,
Friedman 2001, Alg. 6).  For ``K > 2`` classes one multi-output tree per
round is fitted to the ``K`` residual columns (its splits minimise the
summed squared error) rather than ``K`` trees: ``K`` times cheaper, leaf
values still per class.  Because the trees only add to ``F_s``, zero
target trees gives exactly the source model; the source trees are
"fine-tuned" by additive corrections learnt from the target — the
boosting counterpart of fine-tuning a network.  This is the model-transfer
use of an initial model in gradient boosting (e.g. LightGBM's
``init_model`` / ``init_score``, XGBoost's ``base_margin``).

The number of target trees can be chosen by target cross-validation
(``cv=k``): every fold boosts ``n_target_trees`` trees once and scores each
prefix, the best prefix length (0 allowed: the source model as is) is then
refitted on all labelled target rows.

Scale.  Above ``max_samples`` labelled target rows (default 5,000) each
tree is grown on a random subset of that size drawn without replacement
(stochastic gradient boosting, Friedman 2002), while leaf values are
computed from all rows; ``max_samples=None`` always uses all rows.

Default source model.  scikit-learn turns early stopping on only above
10,000 rows; below that its 100 iterations overfit a small source.  On the
Lending Club demo task (4,143 source loans, 5.8% defaults, balanced class
weights) the source model scored on all 889 target loans went from
balanced accuracy 0.570 (ROC AUC 0.677) without early stopping to 0.638
(0.730) with it, and for 500-2,000 source rows (5 random subsets each) from
0.51-0.53 to 0.57-0.59 (``benchmarks/bench_boosting_source.py``).  A
classifier's early stopping needs a stratified split with a row of every
class on both sides, so a source with a class of a single row, or with
fewer validation rows than classes (under about 10 rows per class), is
fitted without it, and so is a regressor's source of a single row.  The
default is wrapped in :class:`~transferkit.model_based.binned_trees.UnweightedBins`
(bins at unweighted quantiles): with class weights scikit-learn's own weighted
binning made a source fit on 560 text embeddings (384-d) take 13 s instead
of 1.

Class weights (classifier, ``class_weight``).  Each labelled row ``i`` gets
the weight ``s_i`` of its class; the source model is fitted with these as
``sample_weight`` (weights computed on the source rows), and on the target
(weights computed on the labelled target rows) the loss is
``sum_i s_i loss_i``: every tree is fitted to the residuals with
``sample_weight = s`` and the Newton leaf values become
``sum s r / sum s p(1-p)`` — sklearn's ``GradientBoostingClassifier`` with
``sample_weight``.  The CV loss is the weighted mean log-loss.

Example
-------
>>> import numpy as np
>>> from sklearn.ensemble import HistGradientBoostingRegressor
>>> from transferkit.model_based import ContinuedBoostingRegressor
>>> rng = np.random.default_rng(0)
>>> Xs, Xt = rng.normal(size=(300, 2)), rng.normal(size=(60, 2))
>>> source = HistGradientBoostingRegressor(max_iter=20)
>>> model = ContinuedBoostingRegressor(source, n_target_trees=20, random_state=0)
>>> model = model.fit_domains(Xs, Xs[:, 0], Xt, Xt[:, 0] + Xt[:, 1])
>>> model.predict(Xt).shape
(60,)
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logsumexp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from transferkit.domains import DomainAwareMixin, read_domains
from transferkit.instance_based.tradaboost import _check_predict_X
from transferkit.model_based.binned_trees import UnweightedBins
from transferkit.model_based.regularized import _row_weights
from transferkit.validation import TransferKitInputError, check_matrix

__all__ = ["ContinuedBoostingClassifier", "ContinuedBoostingRegressor"]

_TINY = 1e-150


class _ContinuedBoosting(DomainAwareMixin, BaseEstimator):
    _regression = True

    def __init__(self, source_estimator=None, n_target_trees: int = 50,
                 learning_rate: float = 0.1, max_depth: int = 3, min_samples_leaf: int = 5,
                 cv=None, max_samples=5_000, random_state=None):
        self.source_estimator = source_estimator
        self.n_target_trees = n_target_trees
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.cv = cv
        self.max_samples = max_samples
        self.random_state = random_state

    # ---- pieces that differ between regression and classification
    def _default_source(self, seed, labels):
        raise NotImplementedError

    def _raw_source(self, X):
        raise NotImplementedError

    def _encode(self, labels):
        raise NotImplementedError

    def _source_weights(self, labels):
        return None

    def _target_weights(self, Y):
        return None

    # ---- shared
    def _validate_params(self):
        n = self.n_target_trees
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise TransferKitInputError(
                f"n_target_trees must be an integer >= 0, got {n!r}.")
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise TransferKitInputError(
                f"learning_rate must be a positive number, got {self.learning_rate!r}.")
        if self.cv is not None and (not isinstance(self.cv, (int, np.integer)) or self.cv < 2):
            raise TransferKitInputError(f"cv must be None or an integer >= 2, got {self.cv!r}.")
        ms = self.max_samples
        if ms is not None and (not isinstance(ms, (int, np.integer)) or ms < 2):
            raise TransferKitInputError(
                f"max_samples must be None or an integer >= 2, got {ms!r}.")

    def fit(self, X, y):
        self._validate_params()
        info = read_domains(y, n_rows=len(X))
        X_arr = check_matrix(X, name="X", dtype=np.float32)
        name = type(self).__name__
        if not info.labelled_source.any():
            raise TransferKitInputError(f"{name} needs labelled source rows; there are none.")
        if not info.labelled_target.any():
            raise TransferKitInputError(
                f"{name} needs labelled target rows to continue boosting on; the target has "
                "none. Use the source model alone (SourceOnly) or an unsupervised method."
            )
        rng = check_random_state(self.random_state)
        Xs, ls = X_arr[info.labelled_source], info.labels_of(info.labelled_source)
        Xt, lt = X_arr[info.labelled_target], info.labels_of(info.labelled_target)
        src_labels = self._source_labels(ls)
        source = (clone(self.source_estimator) if self.source_estimator is not None
                  else self._default_source(rng.randint(np.iinfo(np.int32).max), src_labels))
        sw_src = self._source_weights(src_labels)
        if sw_src is None:
            self.source_estimator_ = source.fit(Xs, src_labels)
        else:
            if not has_fit_parameter(source, "sample_weight"):
                raise TransferKitInputError(
                    f"{name}: class_weight needs a source_estimator whose fit accepts "
                    f"sample_weight; {type(source).__name__} does not.")
            self.source_estimator_ = source.fit(Xs, src_labels, sample_weight=sw_src)
        self.n_features_in_ = X_arr.shape[1]
        Y = self._encode(lt)
        F0 = self._raw_source(Xt)
        n_trees = int(self.n_target_trees)
        self.chosen_params_ = {}
        if self.cv is not None and n_trees > 0 and len(lt) >= 2:
            n_trees = self._choose_n_trees(Xt, Y, F0, n_trees, rng)
            self.chosen_params_ = {"n_target_trees": n_trees}
        self.trees_ = self._boost(Xt, Y, F0, n_trees, rng, self._target_weights(Y))
        self.n_target_trees_ = n_trees
        return self

    def _source_labels(self, labels):
        return labels

    def _choose_n_trees(self, Xt, Y, F0, n_max, rng):
        k = min(int(self.cv), len(Xt))
        seed = rng.randint(np.iinfo(np.int32).max)
        if not self._regression and np.bincount(Y).min() >= k:
            folds = StratifiedKFold(k, shuffle=True, random_state=seed).split(Xt, Y)
        else:
            folds = KFold(k, shuffle=True, random_state=seed).split(Xt)
        losses = np.zeros(n_max + 1)
        sw = self._target_weights(Y)  # held-out rows: weights of all labelled target rows
        for tr, te in folds:
            trees = self._boost(Xt[tr], Y[tr], F0[tr], n_max, rng, self._target_weights(Y[tr]))
            F = F0[te].copy()
            sw_te = None if sw is None else sw[te]
            losses[0] += self._loss(Y[te], F, sw_te)
            for r, tree in enumerate(trees, start=1):
                F += self.learning_rate * _tree_raw(tree, Xt[te])
                losses[r] += self._loss(Y[te], F, sw_te)
        self.cv_losses_ = losses / (len(Xt) if sw is None else sw.sum())
        return int(np.argmin(self.cv_losses_))

    def _boost(self, X, Y, F0, n_trees, rng, sample_weight=None):
        F = F0.copy()
        sw = sample_weight
        trees = []
        m = X.shape[0]
        for _ in range(n_trees):
            R = self._residuals(Y, F)
            tree = DecisionTreeRegressor(
                max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
                random_state=rng.randint(np.iinfo(np.int32).max))
            if self.max_samples is not None and m > self.max_samples:
                sub = rng.choice(m, size=self.max_samples, replace=False)
                tree.fit(X[sub], R[sub] if R.shape[1] > 1 else R[sub, 0],
                         sample_weight=None if sw is None else sw[sub])
            else:
                tree.fit(X, R if R.shape[1] > 1 else R[:, 0], sample_weight=sw)
            leaves = tree.apply(X)
            values = self._leaf_values(leaves, R, F, tree.tree_.node_count, sw)
            trees.append((tree, values))
            F += self.learning_rate * values[leaves]
        return trees

    def _raw(self, X):
        X_arr = _check_predict_X(self, X, fitted_attr="trees_")
        F = self._raw_source(X_arr)
        for tree in self.trees_:
            F += self.learning_rate * _tree_raw(tree, X_arr)
        return F


def _with_early_stopping(model, n_rows: int, class_counts=None):
    """``model`` (a ``HistGradientBoosting*``) with early stopping on if its validation
    split is possible: both sides non-empty and, for a classifier (``class_counts``
    given; the split is stratified), a row of every class on each side."""
    n_validation = int(np.ceil(model.validation_fraction * n_rows))
    n_classes = 1 if class_counts is None else len(class_counts)
    possible = min(n_validation, n_rows - n_validation) >= n_classes
    if class_counts is not None:
        possible = possible and class_counts.min() >= 2
    return model.set_params(early_stopping=bool(possible))


def _tree_raw(tree, X):
    est, values = tree
    return values[est.apply(X)]


def _leaf_sums(leaves, values, n_nodes):
    return np.stack([np.bincount(leaves, weights=values[:, k], minlength=n_nodes)
                     for k in range(values.shape[1])], axis=1)


class ContinuedBoostingRegressor(RegressorMixin, _ContinuedBoosting):
    """Continued gradient boosting for regression (squared loss); see the module docstring.

    Parameters
    ----------
    source_estimator : sklearn regressor, optional
        Fitted on the labelled source rows; its ``predict`` is ``F_s``.
        Default: ``HistGradientBoostingRegressor(early_stopping=True,
        random_state=...)`` (off for a single source row; see the module
        docstring).
    n_target_trees : int, default=50
        Trees ``R`` added on the target (the maximum when ``cv`` is set).
    learning_rate : float, default=0.1
        Shrinkage ``nu``.
    max_depth : int, default=3
    min_samples_leaf : int, default=5
    cv : int or None, default=None
        Choose the number of target trees in ``0..n_target_trees`` by
        ``cv``-fold target cross-validation (mean squared error).
    max_samples : int or None, default=5000
    random_state : int, RandomState or None

    Attributes
    ----------
    source_estimator_, trees_ (list of (tree, leaf values)), n_target_trees_,
    cv_losses_ (with ``cv``: CV loss per number of trees), chosen_params_
    (``{"n_target_trees": n_target_trees_}`` when ``cv`` chose it, else empty).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Xs, Xt = rng.normal(size=(200, 2)), rng.normal(size=(50, 2))
    >>> from sklearn.ensemble import HistGradientBoostingRegressor
    >>> source = HistGradientBoostingRegressor(max_iter=20)
    >>> a = ContinuedBoostingRegressor(source, n_target_trees=0, random_state=0)
    >>> a = a.fit_domains(Xs, Xs[:, 0], Xt, Xt[:, 1])
    >>> bool(np.allclose(a.predict(Xt), a.source_estimator_.predict(Xt)))
    True
    """

    _regression = True

    def _default_source(self, seed, labels):
        return UnweightedBins(_with_early_stopping(
            HistGradientBoostingRegressor(random_state=seed), len(labels)))

    def _source_labels(self, labels):
        return self._encode(labels)[:, 0]

    def _encode(self, labels):
        try:
            return np.asarray(labels, dtype=np.float64)[:, None]
        except (TypeError, ValueError):
            raise TransferKitInputError(
                "ContinuedBoostingRegressor needs numeric labels.") from None

    def _raw_source(self, X):
        return np.asarray(self.source_estimator_.predict(X), dtype=np.float64)[:, None]

    @staticmethod
    def _residuals(Y, F):
        return Y - F

    @staticmethod
    def _leaf_values(leaves, R, F, n_nodes, sample_weight=None):
        sums = _leaf_sums(leaves, R, n_nodes)
        counts = np.bincount(leaves, minlength=n_nodes)[:, None]
        return sums / np.maximum(counts, 1)

    @staticmethod
    def _loss(Y, F, sample_weight=None):
        return float(np.sum((Y - F) ** 2))

    def predict(self, X):
        return self._raw(X)[:, 0]


class ContinuedBoostingClassifier(ClassifierMixin, _ContinuedBoosting):
    """Continued gradient boosting for classification (log-loss); see the module docstring.

    Parameters
    ----------
    source_estimator : sklearn classifier, optional
        Fitted on the labelled source rows; its ``decision_function`` must be
        the log-odds (binary) or the multinomial logits, as for sklearn's
        gradient boosting and logistic regression.  Default:
        ``HistGradientBoostingClassifier(early_stopping=True, random_state=...)``
        (early stopping off when the source is too small for a stratified
        validation split; see the module docstring).  Every labelled
        target class must occur in the source.
    n_target_trees, learning_rate, max_depth, min_samples_leaf, cv,
    max_samples, random_state
        As for :class:`ContinuedBoostingRegressor` (``cv`` scores log-loss).
    class_weight : None, "balanced" or dict, default=None
        Weights of the classes (see the module docstring), sklearn semantics:
        ``None`` all 1; ``"balanced"`` ``n_rows / (n_classes * bincount(y))``
        computed on the rows each model is fitted on (the source model on the
        labelled source rows, passed as its ``sample_weight``, which its
        ``fit`` must accept; the target trees on the labelled target rows), so
        a rare class is not ignored; a dict ``{class: weight}`` (classes left
        out weigh 1).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Xs, Xt = rng.normal(size=(200, 2)), rng.normal(size=(50, 2))
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> source = HistGradientBoostingClassifier(max_iter=20)
    >>> clf = ContinuedBoostingClassifier(source, n_target_trees=10, random_state=0)
    >>> clf.fit_domains(Xs, Xs[:, 0] > 0, Xt, Xt[:, 1] > 0).predict_proba(Xt).shape
    (50, 2)
    """

    _regression = False

    def __init__(self, source_estimator=None, n_target_trees: int = 50,
                 learning_rate: float = 0.1, max_depth: int = 3, min_samples_leaf: int = 5,
                 cv=None, max_samples=5_000, class_weight=None, random_state=None):
        super().__init__(source_estimator=source_estimator, n_target_trees=n_target_trees,
                         learning_rate=learning_rate, max_depth=max_depth,
                         min_samples_leaf=min_samples_leaf, cv=cv, max_samples=max_samples,
                         random_state=random_state)
        self.class_weight = class_weight

    def _default_source(self, seed, labels):
        return UnweightedBins(_with_early_stopping(
            HistGradientBoostingClassifier(random_state=seed), len(labels),
            np.unique(labels, return_counts=True)[1]))

    def _source_weights(self, labels):
        if self.class_weight is None:
            return None
        classes, codes = np.unique(labels, return_inverse=True)
        return _row_weights(self.class_weight, classes, codes.ravel(), type(self).__name__)

    def _target_weights(self, Y):
        if self.class_weight is None:
            return None
        return _row_weights(self.class_weight, self.classes_, Y, type(self).__name__)

    def _source_labels(self, labels):
        try:
            labels = np.asarray(labels.tolist())
            if len(np.unique(labels)) < 2:
                raise TransferKitInputError(
                    "ContinuedBoostingClassifier: the labelled source rows have a single "
                    f"class ({labels[0]!r}); the source model needs at least two.")
        except TypeError:
            raise TransferKitInputError(
                "ContinuedBoostingClassifier: labels of mixed types cannot be ordered.") from None
        return labels

    @property
    def classes_(self):
        check_is_fitted(self, "source_estimator_")
        return self.source_estimator_.classes_

    def _encode(self, labels):
        labels = np.asarray(labels.tolist())
        codes = np.searchsorted(self.classes_, labels)
        codes = np.clip(codes, 0, len(self.classes_) - 1)
        if not np.all(self.classes_[codes] == labels):
            raise TransferKitInputError(
                f"Target labels {sorted(set(labels.tolist()) - set(self.classes_.tolist()))} "
                "never occur in the source; the source model cannot score them.")
        return codes

    def _raw_source(self, X):
        Z = np.asarray(self.source_estimator_.decision_function(X), dtype=np.float64)
        return Z[:, None] if Z.ndim == 1 else Z

    def _onehot(self, codes):
        K = len(self.classes_)
        return codes[:, None].astype(np.float64) if K == 2 else np.eye(K)[codes]

    def _residuals(self, codes, F):
        Y = self._onehot(codes)
        if F.shape[1] == 1:
            return Y - expit(F)
        return Y - np.exp(F - logsumexp(F, axis=1, keepdims=True))

    @staticmethod
    def _leaf_values(leaves, R, F, n_nodes, sample_weight=None):
        K = R.shape[1]
        P = expit(F) if K == 1 else np.exp(F - logsumexp(F, axis=1, keepdims=True))
        H = P * (1.0 - P)  # = |r|(1-|r|), stably
        if sample_weight is not None:
            R, H = R * sample_weight[:, None], H * sample_weight[:, None]
        num = _leaf_sums(leaves, R, n_nodes)
        den = _leaf_sums(leaves, H, n_nodes)
        factor = 1.0 if K == 1 else (K - 1.0) / K
        ok = den > _TINY
        return np.where(ok, factor * num / np.where(ok, den, 1.0), 0.0)

    @staticmethod
    def _loss(codes, F, sample_weight=None):
        if F.shape[1] == 1:
            z = F[:, 0]
            per_row = np.logaddexp(0.0, z) - codes * z
        else:
            per_row = logsumexp(F, axis=1) - F[np.arange(len(codes)), codes]
        return float(np.sum(per_row if sample_weight is None else sample_weight * per_row))

    def decision_function(self, X):
        F = self._raw(X)
        return F[:, 0] if F.shape[1] == 1 else F

    def predict_proba(self, X):
        F = self._raw(X)
        if F.shape[1] == 1:
            p = expit(F[:, 0])
            return np.column_stack([1.0 - p, p])
        return np.exp(F - logsumexp(F, axis=1, keepdims=True))

    def predict(self, X):
        F = self._raw(X)
        idx = (F[:, 0] > 0).astype(np.int64) if F.shape[1] == 1 else np.argmax(F, axis=1)
        return self.classes_[idx]
