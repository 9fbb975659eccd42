"""Regularised transfer for linear and logistic models ("biased regularisation").

A source model ``w_s`` is fitted on the labelled source rows; the target
model is then fitted on the labelled target rows with a penalty pulling its
weights towards ``w_s`` instead of towards zero:

.. math::

    \\min_{w, b} \\; \\frac{1}{m} \\sum_{i \\in \\text{target}} \\ell(y_i, x_i^\\top w + b)
    \\; + \\; \\lambda \\, \\lVert w - w_s \\rVert^2

(the intercept ``b`` is free).  This is the prior-mean ("biased")
regularisation of Evgeniou & Pontil (2004, "Regularized multi-task
learning", KDD) and Kuzborskij & Orabona (2013, "Stability and hypothesis
transfer learning", ICML), and the linear case of L2-SP (Li, Grandvalet &
Davoine 2018, "Explicit inductive bias for transfer learning with
convolutional networks", ICML).  ``lambda -> 0`` gives the target-only
model; ``lambda = inf`` keeps the source weights and refits only the
intercept on the target.  ``lambda`` is chosen by K-fold cross-validation
over the labelled target rows from a grid that contains both ends.

The loss is a *mean* over the ``m`` target rows, so a value of ``lambda``
means the same pull whatever the number of rows (the grid carries over from
CV folds to the final fit).  In the "sum" convention of ridge regression
the penalty is ``m * lambda``.

Example
-------
>>> import numpy as np
>>> from transferkit.model_based import RegularizedTransferRegressor
>>> rng = np.random.default_rng(0)
>>> Xs = rng.normal(size=(500, 5)); w = rng.normal(size=5)
>>> Xt = rng.normal(size=(15, 5))
>>> model = RegularizedTransferRegressor(random_state=0)
>>> model = model.fit_domains(Xs, Xs @ w, Xt, Xt @ (w + 0.1) + 1.0)
>>> bool(np.abs(model.coef_ - w).max() < 0.3)
True
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logsumexp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from transferkit.domains import DomainAwareMixin, read_domains
from transferkit.validation import TransferKitInputError, check_matrix

__all__ = ["RegularizedTransferRegressor", "RegularizedTransferClassifier"]

_AUTO_GRID = np.r_[10.0 ** np.arange(-6, 4), np.inf]


def _class_weights(class_weight, classes, codes, name):
    """Weight per class (shape ``(len(classes),)``) for the rows with class indices ``codes``.

    sklearn semantics: ``None`` -> ``None`` (unweighted); ``"balanced"`` ->
    ``n_rows / (n_classes * bincount(codes))`` over the classes present in
    ``codes`` (absent classes, which have no rows, get 1); a dict maps class
    labels to weights, classes it leaves out get 1.
    """
    if class_weight is None:
        return None
    K = len(classes)
    codes = np.asarray(codes, dtype=np.int64)
    if isinstance(class_weight, str) and class_weight == "balanced":
        counts = np.bincount(codes, minlength=K).astype(np.float64)
        present = counts > 0
        w = np.ones(K)
        w[present] = len(codes) / (present.sum() * counts[present])
        return w
    if isinstance(class_weight, dict):
        keys = np.asarray(classes).tolist()
        unknown = [k for k in class_weight if k not in keys]
        if unknown:
            raise TransferKitInputError(
                f"{name}: class_weight names classes {unknown!r} that are not among the "
                f"classes {keys!r}.")
        try:
            w = np.array([float(class_weight.get(c, 1.0)) for c in keys])
        except (TypeError, ValueError):
            raise TransferKitInputError(
                f"{name}: class_weight values must be numbers, got {class_weight!r}.") from None
        if not np.all(np.isfinite(w)) or (w < 0).any():
            raise TransferKitInputError(
                f"{name}: class_weight values must be finite and >= 0, got {class_weight!r}.")
        if codes.size and not w[codes].sum() > 0:
            raise TransferKitInputError(
                f"{name}: class_weight gives every labelled row weight 0.")
        return w
    raise TransferKitInputError(
        f"{name}: class_weight must be None, 'balanced' or a dict {{class: weight}}, "
        f"got {class_weight!r}.")


def _row_weights(class_weight, classes, codes, name):
    """Per-row weights from :func:`_class_weights` (``None`` when unweighted)."""
    w = _class_weights(class_weight, classes, codes, name)
    return None if w is None else w[np.asarray(codes, dtype=np.int64)]


# --------------------------------------------------------------------------- shared
class _RegularizedBase(DomainAwareMixin, BaseEstimator):
    def _read(self, X, y):
        info = read_domains(y, n_rows=len(X))
        X_arr = check_matrix(X, name="X")
        name = type(self).__name__
        if int(info.labelled_target.sum()) < 2:
            raise TransferKitInputError(
                f"{name} needs at least 2 labelled target rows (to fit the target model and "
                f"choose lambda by cross-validation); got {int(info.labelled_target.sum())}."
            )
        if not info.labelled_source.any():
            raise TransferKitInputError(
                f"{name} needs labelled source rows for the source model; the source has none."
            )
        if not isinstance(self.cv, (int, np.integer)) or self.cv < 2:
            raise TransferKitInputError(f"cv must be an integer >= 2, got {self.cv!r}.")
        if not np.isfinite(self.source_lambda) or self.source_lambda < 0:
            raise TransferKitInputError(
                f"source_lambda must be a finite number >= 0, got {self.source_lambda!r}."
            )
        self.n_features_in_ = X_arr.shape[1]
        src, tgt = info.labelled_source, info.labelled_target
        return X_arr[src], info.labels_of(src), X_arr[tgt], info.labels_of(tgt)

    def _grid(self, Xt):
        if isinstance(self.lambdas, str) and self.lambdas == "auto":
            scale = float(np.mean(np.var(Xt, axis=0)))
            return (scale if scale > 0 else 1.0) * _AUTO_GRID
        grid = np.asarray(self.lambdas, dtype=float).ravel()
        if grid.size == 0 or np.isnan(grid).any() or (grid < 0).any():
            raise TransferKitInputError(
                "lambdas must be 'auto' or a non-empty list of numbers >= 0 (np.inf allowed "
                f"for 'keep the source weights'), got {self.lambdas!r}."
            )
        return np.sort(grid)

    def _folds(self, y_codes, n_rows, rng, stratify):
        k = min(int(self.cv), n_rows)
        seed = rng.randint(np.iinfo(np.int32).max)
        if stratify and np.bincount(y_codes).min() >= k:
            return list(StratifiedKFold(k, shuffle=True, random_state=seed)
                        .split(np.zeros(n_rows), y_codes))
        return list(KFold(k, shuffle=True, random_state=seed).split(np.zeros(n_rows)))

    def _check_X(self, X):
        check_is_fitted(self, "coef_")
        X_arr = check_matrix(X, name="X", n_features=self.n_features_in_,
                             fitted_by=type(self).__name__)
        return X_arr


# --------------------------------------------------------------------------- regression
def _ridge_path(X, y, w_prior, lambdas):
    """Solutions of ``(Xc'Xc + m lam I) w = Xc'yc + m lam w_prior`` for every ``lam``.

    Returns (W of shape (len(lambdas), d), intercepts).  ``lam = inf`` gives
    ``w_prior``.  One eigendecomposition serves the whole grid.
    """
    m = X.shape[0]
    x_mean, y_mean = X.mean(axis=0), y.mean()
    Xc, yc = X - x_mean, y - y_mean
    evals, V = np.linalg.eigh(Xc.T @ Xc / m)
    evals = np.clip(evals, 0.0, None)
    rhs_data = V.T @ (Xc.T @ yc / m)
    rhs_prior = V.T @ w_prior
    tol = 1e-12 * max(float(evals.max()), 1e-300)
    W = np.empty((len(lambdas), X.shape[1]))
    for j, lam in enumerate(lambdas):
        if np.isinf(lam):
            W[j] = w_prior
            continue
        denom = evals + lam
        keep = denom > tol  # lam = 0 on rank-deficient data: minimum-norm solution
        inv = np.where(keep, 1.0 / np.where(keep, denom, 1.0), 0.0)
        W[j] = V @ (inv * (rhs_data + lam * rhs_prior))
    return W, y_mean - W @ x_mean


class RegularizedTransferRegressor(RegressorMixin, _RegularizedBase):
    """Linear regression pulled towards a source ridge model (biased regularisation).

    Source: ridge on the labelled source rows,
    ``min (1/n) ||y_s - X_s w - b||^2 + source_lambda ||w||^2``.
    Target (see the module docstring for references), with ``X_c``, ``y_c``
    the target rows centred by their means:

    .. math::

        (X_c^\\top X_c + m \\lambda I) \\, w = X_c^\\top y_c + m \\lambda w_s,
        \\qquad b = \\bar y - \\bar x^\\top w,

    i.e. ridge regression with penalty ``m * lambda`` on the offset problem
    ``y - X w_s``, plus ``w_s``.  ``lambda`` is chosen from ``lambdas`` by
    ``cv``-fold cross-validated mean squared error on the labelled target
    rows.

    Parameters
    ----------
    lambdas : "auto" or list of float, default="auto"
        Candidate ``lambda`` (>= 0, ``np.inf`` allowed).  "auto":
        ``s * [1e-6, 1e-5, ..., 1e3]`` plus ``inf``, where ``s`` is the mean
        variance of the target features (so the grid follows the data's scale).
    source_lambda : float, default=1e-3
        Ridge strength of the source model (same mean-loss convention).
    cv : int, default=5
        Folds (at most the number of labelled target rows).
    random_state : int, RandomState or None
        Shuffles the folds.

    Attributes
    ----------
    coef_, intercept_ : the target model.
    source_coef_, source_intercept_ : the source model.
    lambda_ : the chosen ``lambda``; lambdas_ : the grid; cv_scores_ : CV mean
    squared error per grid value; chosen_params_ : ``{"lambda": lambda_}``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Xs, Xt = rng.normal(size=(100, 2)), rng.normal(size=(10, 2))
    >>> m = RegularizedTransferRegressor(lambdas=[np.inf]).fit_domains(
    ...     Xs, Xs @ [1.0, 2.0], Xt, Xt @ [1.0, 2.0] + 5.0)
    >>> np.round(m.coef_, 2).tolist(), round(float(m.intercept_), 2)
    ([1.0, 2.0], 5.0)
    """

    def __init__(self, lambdas="auto", source_lambda: float = 1e-3, cv: int = 5,
                 random_state=None):
        self.lambdas = lambdas
        self.source_lambda = source_lambda
        self.cv = cv
        self.random_state = random_state

    def fit(self, X, y):
        Xs, ys, Xt, yt = self._read(X, y)
        try:
            ys, yt = ys.astype(np.float64), yt.astype(np.float64)
        except (TypeError, ValueError):
            raise TransferKitInputError(
                "RegularizedTransferRegressor needs numeric labels.") from None
        rng = check_random_state(self.random_state)
        grid = self._grid(Xt)
        w_s, b_s = _ridge_path(Xs, ys, np.zeros(Xs.shape[1]), [float(self.source_lambda)])
        w_s, b_s = w_s[0], float(b_s[0])
        folds = self._folds(None, len(yt), rng, stratify=False)
        sq = np.zeros(len(grid))
        for tr, te in folds:
            W, b = _ridge_path(Xt[tr], yt[tr], w_s, grid)
            sq += np.sum((Xt[te] @ W.T + b - yt[te][:, None]) ** 2, axis=0)
        scores = sq / len(yt)
        best = int(np.argmin(scores))
        W, b = _ridge_path(Xt, yt, w_s, grid[best:best + 1])
        self.coef_, self.intercept_ = W[0], float(b[0])
        self.source_coef_, self.source_intercept_ = w_s, b_s
        self.lambdas_, self.cv_scores_, self.lambda_ = grid, scores, float(grid[best])
        self.chosen_params_ = {"lambda": self.lambda_}
        return self

    def predict(self, X):
        return self._check_X(X) @ self.coef_ + self.intercept_


# --------------------------------------------------------------------------- logistic
def _logistic_objective(theta, X, Y, prior, lam, offset, sample_weight=None):
    """Mean log-loss + ``lam ||W - prior||^2`` and its gradient.

    ``theta`` packs ``W`` (d, K) then ``b`` (K,); ``K = 1`` is the binary
    sigmoid model (``Y`` 0/1 of shape (m,)), ``K > 1`` the multinomial
    softmax model (``Y`` one-hot (m, K)).  With ``offset`` given, ``theta``
    is ``b`` only and the scores are ``offset + b``.  With ``sample_weight``
    ``s`` the mean is the weighted mean ``sum_i s_i loss_i / sum_i s_i``.
    """
    m = X.shape[0]
    if sample_weight is not None:
        a = np.asarray(sample_weight, dtype=np.float64)
        a = a / a.sum()
    K = prior.shape[1]
    if offset is None:
        d = X.shape[1]
        W, b = theta[: d * K].reshape(d, K), theta[d * K:]
        Z = X @ W + b
    else:
        W, b = None, theta
        Z = offset + b
    if K == 1:
        z = Z[:, 0]
        if sample_weight is None:
            loss = np.mean(np.logaddexp(0.0, z) - Y * z)
            G = ((expit(z) - Y) / m)[:, None]
        else:
            loss = np.sum(a * (np.logaddexp(0.0, z) - Y * z))
            G = ((expit(z) - Y) * a)[:, None]
    else:
        lse = logsumexp(Z, axis=1)
        if sample_weight is None:
            loss = np.mean(lse - np.sum(Z * Y, axis=1))
            G = (np.exp(Z - lse[:, None]) - Y) / m
        else:
            loss = np.sum(a * (lse - np.sum(Z * Y, axis=1)))
            G = (np.exp(Z - lse[:, None]) - Y) * a[:, None]
    if offset is not None:
        return loss, G.sum(axis=0)
    D = W - prior
    value = loss + lam * np.sum(D * D)
    grad = np.concatenate([(X.T @ G + 2.0 * lam * D).ravel(), G.sum(axis=0)])
    return value, grad


def _logistic_hessp(theta, v, X, Y, prior, lam, offset, sample_weight=None):
    """Hessian of :func:`_logistic_objective` at ``theta`` times the direction ``v``.

    With scores ``Z``, probabilities ``P`` and the direction's scores
    ``dZ = X V + c`` (``v`` packs ``V`` then ``c`` like ``theta``), the
    softmax log-loss has ``H v = [X^T R + 2 lam V, sum_i R_i]`` with
    ``R = a * (P o dZ - P o (P o dZ) 1 1^T)`` (row weights ``a``: ``1/m``
    or the normalised sample weights); for the sigmoid model
    ``R = a * p (1 - p) dz``.  No ``d K x d K`` matrix is formed.
    """
    m = X.shape[0]
    a = (np.full(m, 1.0 / m) if sample_weight is None
         else np.asarray(sample_weight, dtype=np.float64) / np.sum(sample_weight))
    K = prior.shape[1]
    if offset is None:
        d = X.shape[1]
        W, b = theta[: d * K].reshape(d, K), theta[d * K:]
        V, c = v[: d * K].reshape(d, K), v[d * K:]
        Z, dZ = X @ W + b, X @ V + c
    else:
        Z, dZ = offset + theta, np.broadcast_to(v, (m, K))
    if K == 1:
        p = expit(Z[:, 0])
        R = (a * p * (1.0 - p) * dZ[:, 0])[:, None]
    else:
        P = np.exp(Z - logsumexp(Z, axis=1, keepdims=True))
        PdZ = P * dZ
        R = a[:, None] * (PdZ - P * PdZ.sum(axis=1, keepdims=True))
    if offset is not None:
        return R.sum(axis=0)
    return np.concatenate([(X.T @ R + 2.0 * lam * V).ravel(), R.sum(axis=0)])


def _logistic_fit(X, Y, prior, lam, start, max_iter, tol, sample_weight=None):
    """Minimise :func:`_logistic_objective` by trust-region Newton-CG; returns (W, b).

    The objective is smooth and strictly convex (``lam > 0``), so Newton steps
    with Hessian-vector products (:func:`_logistic_hessp`) reach the minimum in
    a few iterations where L-BFGS needed hundreds on wide, many-class
    problems (2,000 x 1,280 image embeddings, 10 classes, ``lam = 1e-3``).
    """
    d, K = prior.shape
    W0, b0 = start
    opts = {"maxiter": max_iter, "gtol": tol}
    if np.isinf(lam):
        args = (X, Y, prior, lam, X @ prior, sample_weight)
        res = minimize(_logistic_objective, b0, args=args, jac=True, hessp=_logistic_hessp,
                       method="trust-ncg", options=opts)
        return prior.copy(), res.x
    theta0 = np.concatenate([W0.ravel(), b0])
    args = (X, Y, prior, lam, None, sample_weight)
    res = minimize(_logistic_objective, theta0, args=args, jac=True, hessp=_logistic_hessp,
                   method="trust-ncg", options=opts)
    return res.x[: d * K].reshape(d, K), res.x[d * K:]


def _scores(X, W, b):
    return X @ W + b


def _log_loss(Z, codes, sample_weight=None):
    if Z.shape[1] == 1:
        z = Z[:, 0]
        per_row = np.logaddexp(0.0, z) - codes * z
    else:
        per_row = logsumexp(Z, axis=1) - Z[np.arange(len(codes)), codes]
    return np.sum(per_row) if sample_weight is None else np.sum(sample_weight * per_row)


class RegularizedTransferClassifier(ClassifierMixin, _RegularizedBase):
    """Logistic regression pulled towards a source logistic model (biased regularisation).

    Binary: one weight vector, ``p(y=1|x) = sigmoid(x'w + b)``; multi-class:
    multinomial softmax with one weight vector per class.  Source model:
    ``min mean log-loss(source) + source_lambda ||W||^2``.  Target model:

    .. math::

        \\min_{W, b} \\; \\frac{1}{m} \\sum_{i} -\\log p(y_i \\mid x_i; W, b)
        + \\lambda \\lVert W - W_s \\rVert_F^2,

    solved by L-BFGS (scipy) with the analytic gradient
    ``X'(P - Y)/m + 2 lambda (W - W_s)`` (intercepts: ``sum(P - Y)/m``),
    warm-started along the ``lambda`` path from large to small.  With
    ``W_s = 0`` this is sklearn's ``LogisticRegression`` with
    ``C = 1 / (2 m lambda)``.  ``lambda`` is chosen by ``cv``-fold
    cross-validated log-loss on the labelled target rows.  The class list
    is the union of the source and target classes.

    Class weights.  With ``class_weight`` set, every row ``i`` of class
    ``c`` gets weight ``s_i = class_weight[c]`` and each mean log-loss above
    (source model, target model, CV score) becomes the weighted mean
    ``sum_i s_i loss_i / sum_i s_i``; the gradient's ``(P - Y)/m`` becomes
    ``s (P - Y) / sum(s)``.  ``"balanced"`` weights are computed per fit on
    the rows that model is trained on: the source model on the labelled
    source rows, the target model (and each CV fold's model) on its labelled
    target rows; then ``sum(s) = m`` and with ``W_s = 0`` the target model is
    sklearn's ``LogisticRegression(class_weight="balanced", C=1/(2 m lambda))``.
    With a dict, ``sum(s)`` replaces ``m`` in ``C``.

    Parameters
    ----------
    lambdas : "auto" or list of float, default="auto"
        As for :class:`RegularizedTransferRegressor`.
    source_lambda : float, default=1e-3
    cv : int, default=5
        Folds (stratified when every class has enough labelled target rows).
    cv_max_rows : int or None, default=20000
        Above this many labelled target rows, ``lambda`` is chosen on a random
        subset of this size (the mean-loss convention makes ``lambda``
        comparable across sizes); the final model uses every row.  The
        trade-off: a noisier choice of ``lambda`` at sizes where the prior
        barely matters.  ``None``: always all rows.
    max_iter : int, default=500
    tol : float, default=1e-6
        L-BFGS gradient tolerance.
    class_weight : None, "balanced" or dict, default=None
        Weights of the classes in the log-losses (see above), sklearn
        semantics: ``None`` all 1; ``"balanced"``
        ``n_rows / (n_classes * bincount(y))`` on the rows each model is
        fitted on, so a rare class is not ignored; a dict ``{class: weight}``
        (classes left out weigh 1).
    random_state : int, RandomState or None

    Attributes
    ----------
    classes_, coef_ (K', d), intercept_ (K',) with K' = 1 for binary,
    source_coef_, source_intercept_, lambda_, lambdas_, cv_scores_ (CV
    log-loss per grid value), chosen_params_ (``{"lambda": lambda_}``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Xs, Xt = rng.normal(size=(300, 3)), rng.normal(size=(20, 3))
    >>> clf = RegularizedTransferClassifier(random_state=0).fit_domains(
    ...     Xs, Xs[:, 0] > 0, Xt, Xt[:, 0] > 0.2)
    >>> clf.predict(Xt).shape
    (20,)
    """

    def __init__(self, lambdas="auto", source_lambda: float = 1e-3, cv: int = 5,
                 cv_max_rows=20_000, max_iter: int = 500, tol: float = 1e-6,
                 class_weight=None, random_state=None):
        self.lambdas = lambdas
        self.source_lambda = source_lambda
        self.cv = cv
        self.cv_max_rows = cv_max_rows
        self.max_iter = max_iter
        self.tol = tol
        self.class_weight = class_weight
        self.random_state = random_state

    def _targets(self, codes):
        K = len(self.classes_)
        if K == 2:
            return codes.astype(np.float64)
        return np.eye(K)[codes]

    def fit(self, X, y):
        Xs, ys, Xt, yt = self._read(X, y)
        cmr = self.cv_max_rows
        if cmr is not None and (not isinstance(cmr, (int, np.integer)) or cmr < 2):
            raise TransferKitInputError(
                f"cv_max_rows must be None or an integer >= 2, got {cmr!r}.")
        try:
            classes, codes = np.unique(np.asarray(np.r_[ys, yt].tolist()), return_inverse=True)
        except TypeError:
            raise TransferKitInputError(
                "RegularizedTransferClassifier: labels of mixed types cannot be ordered."
            ) from None
        if len(classes) < 2:
            raise TransferKitInputError(
                f"RegularizedTransferClassifier: the labelled rows have a single class "
                f"({classes[0]!r}); a classifier needs at least two."
            )
        self.classes_ = classes
        cs, ct = codes[: len(ys)], codes[len(ys):]
        name = type(self).__name__
        cw = self.class_weight

        def weights(c):  # class weights computed on the rows c that a model is fitted on
            return _row_weights(cw, classes, c, name)

        rng = check_random_state(self.random_state)
        grid = self._grid(Xt)
        d, K = Xs.shape[1], (1 if len(classes) == 2 else len(classes))
        zero = (np.zeros((d, K)), np.zeros(K))
        sw_t = weights(ct)  # validates class_weight before any fitting
        W_s, b_s = _logistic_fit(Xs, self._targets(cs), np.zeros((d, K)),
                                 float(self.source_lambda), zero, self.max_iter, self.tol,
                                 weights(cs))
        # CV over the labelled target rows (optionally a subset), path large -> small
        sel = np.arange(len(ct))
        if cmr is not None and len(ct) > cmr:
            sel = np.sort(rng.choice(len(ct), size=cmr, replace=False))
        Xc, cc = Xt[sel], ct[sel]
        sw_c = weights(cc)  # held-out rows are scored with the CV rows' class weights
        order = np.argsort(grid)[::-1]
        losses = np.zeros(len(grid))
        for tr, te in self._folds(cc, len(cc), rng, stratify=True):
            start = (W_s, b_s)
            Ytr, sw_tr = self._targets(cc[tr]), weights(cc[tr])
            for j in order:
                start = _logistic_fit(Xc[tr], Ytr, W_s, grid[j], start, self.max_iter,
                                      self.tol, sw_tr)
                losses[j] += _log_loss(_scores(Xc[te], *start), cc[te],
                                       None if sw_c is None else sw_c[te])
        scores = losses / (len(cc) if sw_c is None else sw_c.sum())
        best = int(np.argmin(scores))
        W, b = _logistic_fit(Xt, self._targets(ct), W_s, grid[best], (W_s, b_s),
                             self.max_iter, self.tol, sw_t)
        self.coef_, self.intercept_ = W.T, b
        self.source_coef_, self.source_intercept_ = W_s.T, b_s
        self.lambdas_, self.cv_scores_, self.lambda_ = grid, scores, float(grid[best])
        self.chosen_params_ = {"lambda": self.lambda_}
        return self

    def decision_function(self, X):
        Z = self._check_X(X) @ self.coef_.T + self.intercept_
        return Z[:, 0] if Z.shape[1] == 1 else Z

    def predict_proba(self, X):
        Z = self.decision_function(X)
        if Z.ndim == 1:
            p = expit(Z)
            return np.column_stack([1.0 - p, p])
        return np.exp(Z - logsumexp(Z, axis=1, keepdims=True))

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
