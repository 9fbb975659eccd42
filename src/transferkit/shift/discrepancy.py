"""Discrepancy measures between a source and a target sample.

* :func:`proxy_a_distance` — how well a classifier tells the domains apart
  (Ben-David et al. 2007, 2010);
* :func:`coral_distance` — how different the feature covariances are
  (Sun & Saenko 2016).

Example
-------
>>> import numpy as np
>>> from transferkit.shift import coral_distance, proxy_a_distance
>>> rng = np.random.default_rng(0)
>>> Xs = rng.normal(size=(300, 4)); Xt = rng.normal(loc=4.0, size=(300, 4))
>>> proxy_a_distance(Xs, Xt, random_state=0) > 1.9
True
>>> coral_distance(Xs, Xs)
0.0
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

from transferkit.shift.kernels import power_of_two_exponent
from transferkit.validation import TransferKitInputError, check_matrix

__all__ = ["proxy_a_distance", "coral_distance"]


def _check_domains(X_source, X_target, min_rows: int, why: str):
    arrays = []
    for name, data in (("X_source", X_source), ("X_target", X_target)):
        array = check_matrix(data, name=name, min_rows=0)
        if array.shape[0] == 0:
            raise TransferKitInputError(f"{name} is an empty sample (0 rows); {why}.")
        if array.shape[0] < min_rows:
            raise TransferKitInputError(
                f"{name} has {array.shape[0]} row(s) but {why} (at least {min_rows} rows)."
            )
        arrays.append(array)
    Xs, Xt = arrays
    if Xs.shape[1] != Xt.shape[1]:
        raise TransferKitInputError(
            f"X_source has {Xs.shape[1]} features but X_target has {Xt.shape[1]}; both "
            "domains must have the same feature columns (in the same order)."
        )
    return Xs, Xt


def proxy_a_distance(X_source, X_target, classifier=None, cv: int = 5, random_state=None,
                     clip: bool = True) -> float:
    """Proxy A-distance from the cross-validated error of a domain classifier.

    A classifier is trained to tell source rows (label 0) from target rows
    (label 1); with :math:`\\varepsilon` its cross-validated *balanced*
    error,

    .. math::
        \\hat d_{\\mathcal{A}} = 2\\,(1 - 2\\varepsilon),
        \\qquad \\varepsilon = \\tfrac12\\big(\\Pr[\\hat y = 1 \\mid \\text{source}]
        + \\Pr[\\hat y = 0 \\mid \\text{target}]\\big).

    Identical domains give :math:`\\varepsilon \\approx 0.5`, i.e.
    :math:`\\hat d_{\\mathcal{A}} \\approx 0`; perfectly separable ones give
    :math:`\\varepsilon = 0`, :math:`\\hat d_{\\mathcal{A}} = 2`.  The balanced
    error is the error the classifier would make on equally sized domains,
    so the measure does not depend on the ratio of the two sample sizes (a
    majority-class guess scores 0.5, not the smaller domain's share).

    Parameters
    ----------
    X_source : array-like of shape (m, d)
    X_target : array-like of shape (n, d)
    classifier : scikit-learn classifier, optional
        Any estimator with ``fit`` / ``predict``; cloned, never modified.
        Default: standardisation followed by ``LogisticRegression``.  Its
        parameters named ``random_state`` (nested ones included) that are
        None are set from ``random_state``.
    cv : int, default=5
        Number of stratified folds (shuffled with ``random_state``); each
        domain needs at least ``cv`` rows.
    random_state : int, RandomState or None
        Seed of the fold split (and of the classifier, see above).
    clip : bool, default=True
        Clip negative values (an error above 0.5, which is noise around
        identical domains) to 0, so the result lies in [0, 2].

    Returns
    -------
    float

    References
    ----------
    Ben-David, Blitzer, Crammer, Pereira. "Analysis of Representations for
    Domain Adaptation." NeurIPS 2007.
    Ben-David, Blitzer, Crammer, Kulesza, Pereira, Vaughan. "A theory of
    learning from different domains." Machine Learning 79 (2010).

    Example
    -------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 3))
    >>> proxy_a_distance(X[:200], X[200:], random_state=0) < 0.3
    True
    """
    if not isinstance(cv, numbers.Integral) or isinstance(cv, bool) or cv < 2:
        raise TransferKitInputError(f"cv must be an integer >= 2, got {cv!r}.")
    Xs, Xt = _check_domains(
        X_source, X_target, int(cv), f"{cv}-fold cross-validation needs at least {cv} rows "
        "per domain; lower cv or add rows"
    )
    if classifier is None:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    else:
        if not (hasattr(classifier, "fit") and hasattr(classifier, "predict")):
            raise TransferKitInputError(
                f"classifier must be a scikit-learn style classifier with fit and predict, "
                f"got {type(classifier).__name__}."
            )
        model = clone(classifier)
    rng = check_random_state(random_state)
    seeds = {
        key: int(rng.randint(np.iinfo(np.int32).max))
        for key, value in sorted(model.get_params(deep=True).items())
        if key.split("__")[-1] == "random_state" and value is None
    }
    if seeds and random_state is not None:
        model.set_params(**seeds)
    X = np.vstack([Xs, Xt])
    if classifier is None:      # scale-free, so divide by 2^e (exact): no variance
        X = np.ldexp(X, -power_of_two_exponent(X))   # under- or overflows
    y = np.r_[np.zeros(Xs.shape[0], dtype=int), np.ones(Xt.shape[0], dtype=int)]
    folds = StratifiedKFold(n_splits=int(cv), shuffle=True,
                            random_state=int(rng.randint(np.iinfo(np.int32).max)))
    predicted = np.asarray(cross_val_predict(model, X, y, cv=folds))
    error = 0.5 * (np.mean(predicted[y == 0] != 0) + np.mean(predicted[y == 1] != 1))
    distance = 2.0 * (1.0 - 2.0 * float(error))
    return max(distance, 0.0) if clip else distance


def coral_distance(X_source, X_target) -> float:
    """CORAL distance between the feature covariances of two domains.

    .. math::
        d_{\\mathrm{CORAL}} = \\frac{1}{4 d^2} \\lVert C_S - C_T \\rVert_F^2,
        \\qquad C = \\frac{1}{n - 1}\\Big(D^\\top D
        - \\frac{1}{n} (\\mathbf{1}^\\top D)^\\top (\\mathbf{1}^\\top D)\\Big),

    with :math:`D` the :math:`n \\times d` data of a domain (the unbiased
    sample covariance) and :math:`\\lVert\\cdot\\rVert_F` the Frobenius norm.
    This is the CORAL loss of Sun & Saenko (2016).  It is 0 when the
    covariances agree and is blind to mean shifts.

    Parameters
    ----------
    X_source : array-like of shape (m, d)
        At least 2 rows.
    X_target : array-like of shape (n, d)
        At least 2 rows, same ``d``.

    Returns
    -------
    float

    References
    ----------
    Sun, Saenko. "Deep CORAL: Correlation Alignment for Deep Domain
    Adaptation." ECCV Workshops 2016.

    Example
    -------
    >>> coral_distance([[0.0], [2.0]], [[0.0], [4.0]])  # (2 - 8)^2 / 4
    9.0
    """
    Xs, Xt = _check_domains(X_source, X_target, 2, "a covariance needs at least 2 rows")
    d = Xs.shape[1]
    # on data divided by 2^e (exact): the covariances scale by 2^2e, the distance by 2^4e
    exponent = power_of_two_exponent(Xs, Xt)
    Cs = np.atleast_2d(np.cov(np.ldexp(Xs, -exponent), rowvar=False))
    Ct = np.atleast_2d(np.cov(np.ldexp(Xt, -exponent), rowvar=False))
    with np.errstate(over="ignore"):
        distance = np.ldexp(float(np.sum((Cs - Ct) ** 2) / (4.0 * d * d)), 4 * exponent)
    if not np.isfinite(distance):
        raise TransferKitInputError(
            f"The CORAL distance of these samples overflows float64 (values around "
            f"2^{exponent}); rescale the features (e.g. standardise them) first.")
    return float(distance)
