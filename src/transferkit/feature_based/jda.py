"""Joint Distribution Adaptation (JDA).

Long, Wang, Ding, Sun & Yu, "Transfer Feature Learning with Joint
Distribution Adaptation", ICCV 2013.

The maths
---------
JDA is TCA (:mod:`transferkit.feature_based.tca`) with extra
class-conditional MMD terms.  For each class ``c`` let :math:`S_c` be the
labelled source rows of class ``c`` and :math:`T_c` the target rows of
class ``c`` (true label where the target row is labelled, a *pseudo-label*
otherwise), and :math:`M_c = e_c e_c^\\top` with
:math:`(e_c)_i = 1/|S_c|` on :math:`S_c`, :math:`-1/|T_c|` on :math:`T_c`
and 0 elsewhere (the paper's :math:`M_c`, eq. 6).  With
:math:`M_0 = L = e e^\\top` the marginal term of TCA, the kernelised JDA
problem (section 3.3) is

.. math::
    \\min_W \\operatorname{tr}\\Big(W^\\top K \\big(\\textstyle\\sum_{c=0}^{C} M_c\\big)
    K W\\Big) + \\mu \\lVert W \\rVert_F^2
    \\quad\\text{s.t.}\\quad W^\\top K H K W = I,

solved by the leading eigenvectors of
:math:`K H K w = \\lambda (K E E^\\top K + \\mu I) w` with
:math:`E = [e, e_1, \\dots, e_C]` (``mu`` is the paper's :math:`\\lambda`).
A class with no labelled source row or no target row contributes no term.

Iterations (the paper's Algorithm 1): the first solve uses :math:`M_0`
(plus the classes of labelled target rows, if any); then, ``n_iter``
times, a classifier trained on every labelled row (source and labelled
target) *in the current embedding* predicts pseudo-labels for the
unlabelled target rows, :math:`M_c` is rebuilt and the problem re-solved.
The loop stops early when the pseudo-labels no longer change.

Paths, scaling, signs and the Nystroem approximation are those of
:class:`~transferkit.feature_based.TCA`; the Nystroem features are built
once and every iteration is an ``r x r`` eigenproblem plus one pass
``F^T E`` over the rows.

Deviations from the paper: the default pseudo-labeller is a logistic
regression (the paper uses 1-nearest-neighbour, which is quadratic in
``n``; pass ``classifier=KNeighborsClassifier(1)`` for the paper's
choice), trained on at most ``max_classifier_rows`` labelled rows (a
uniform random subset, seeded by ``random_state``, when there are more);
labelled target rows join the class-conditional terms with their true
labels; the loop stops early once the pseudo-labels repeat.

Example
-------
>>> import numpy as np
>>> from transferkit.domains import stack_domains
>>> from transferkit.feature_based import JDA
>>> rng = np.random.default_rng(0)
>>> ys = rng.integers(0, 2, 60)
>>> Xs = rng.normal(0, 1, (60, 3)) + 2 * ys[:, None]
>>> X, y = stack_domains(Xs, ys, Xs[:40] + 1.0)
>>> jda = JDA(n_components=2, n_iter=3, random_state=0)
>>> jda.fit_transform(X, y).shape
(100, 2)
>>> jda.pseudo_labels_.shape
(40,)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils import check_random_state

from transferkit.domains import DomainInfo, infer_task
from transferkit.feature_based._kernels import check_nonnegative_int, check_positive_int
from transferkit.feature_based.tca import _KernelComponents, mmd_vector
from transferkit.validation import TransferKitInputError

__all__ = ["JDA"]


def class_mismatch_vectors(codes: np.ndarray, is_source_labelled: np.ndarray,
                           is_target: np.ndarray, n_classes: int) -> np.ndarray:
    """The columns ``e_c`` of ``E`` for classes with rows on both sides.

    ``codes`` holds each row's class index (-1 for no class).
    """
    cols = []
    for c in range(n_classes):
        src = is_source_labelled & (codes == c)
        tgt = is_target & (codes == c)
        n_src, n_tgt = int(src.sum()), int(tgt.sum())
        if n_src and n_tgt:
            col = np.zeros(codes.size)
            col[src] = 1.0 / n_src
            col[tgt] = -1.0 / n_tgt
            cols.append(col)
    if not cols:
        return np.zeros((codes.size, 0))
    return np.column_stack(cols)


class JDA(_KernelComponents):
    """Joint Distribution Adaptation (Long et al., ICCV 2013); see the module docstring.

    Classification only.

    Parameters
    ----------
    n_components : int, default=20
    kernel : {"gaussian", "mixture", "linear"}, default="gaussian"
    bandwidth : "median" or float, default="median"
    mu : float, default=1.0
        Regularisation (the paper's :math:`\\lambda`).
    n_iter : int, default=10
        Pseudo-label rounds ``T`` after the first solve (0 = one solve, i.e.
        TCA plus the classes of labelled target rows).
    classifier : sklearn classifier, optional
        Pseudo-labeller trained in the current embedding; default
        ``LogisticRegression(max_iter=1000)``.
    max_classifier_rows : int, default=20000
        The pseudo-labeller is trained on at most this many labelled rows
        (a random subset, seeded by ``random_state``).
    method : {"auto", "exact", "nystroem"}, default="auto"
    n_landmarks : int, default=500
    task : {"auto", "classification"}, default="auto"
        ``"auto"`` infers the task from the labels and rejects regression.
    random_state : int, RandomState or None

    Attributes
    ----------
    eigenvalues_, coef_, basis_, method_, bandwidth_, n_components_
        As in :class:`~transferkit.feature_based.TCA`, for the last solve.
    classes_ : ndarray
        Class labels (sorted).
    pseudo_labels_ : ndarray (n_unlabelled_target,)
        Pseudo-labels of the unlabelled target rows (in row order) used by
        the last solve; empty when no pseudo-label round ran (every target
        row labelled, or ``n_iter=0``).
    n_iter_ : int
        Pseudo-label rounds run.
    """

    def __init__(self, n_components: int = 20, kernel: str = "gaussian", bandwidth="median",
                 mu: float = 1.0, n_iter: int = 10, classifier=None,
                 max_classifier_rows: int = 20000, method: str = "auto",
                 n_landmarks: int = 500, task: str = "auto", random_state=None):
        self.n_components = n_components
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.mu = mu
        self.n_iter = n_iter
        self.classifier = classifier
        self.max_classifier_rows = max_classifier_rows
        self.method = method
        self.n_landmarks = n_landmarks
        self.task = task
        self.random_state = random_state

    def _check_labels(self, info: DomainInfo):
        if self.task not in ("auto", "classification"):
            raise TransferKitInputError(
                f"JDA is a classification method: task must be 'auto' or 'classification', "
                f"got {self.task!r}."
            )
        if not info.labelled_source.any():
            raise TransferKitInputError(
                "JDA needs labelled source rows (its class-conditional terms use the source "
                "labels); the source domain(s) have none."
            )
        labelled = info.labels_of(info.labelled)
        if self.task == "auto" and infer_task(labelled) == "regression":
            raise TransferKitInputError(
                "JDA is for classification, but the labels look continuous (regression). "
                "Use TCA for regression, or pass task='classification' if these numbers "
                "are class codes."
            )
        codes_lab, classes = pd.factorize(pd.Series(labelled, dtype=object), sort=True)
        if len(classes) < 2:
            raise TransferKitInputError(
                f"JDA needs at least two classes among the labelled rows; got only "
                f"{classes[0]!r}."
            )
        codes = np.full(info.labels.size, -1, dtype=np.int64)
        codes[info.labelled] = codes_lab
        return codes, np.asarray(classes, dtype=object)

    def _fit(self, X: np.ndarray, info: DomainInfo) -> np.ndarray:
        n_iter = check_nonnegative_int(self.n_iter, "n_iter")
        max_rows = check_positive_int(self.max_classifier_rows, "max_classifier_rows")
        codes, classes = self._check_labels(info)
        n = X.shape[0]
        e0 = mmd_vector(info.is_target)[:, None]
        src_lab = info.labelled_source
        pseudo_rows = np.flatnonzero(info.is_target & ~info.labelled)
        train_rows = np.flatnonzero(info.labelled)
        if train_rows.size > max_rows:
            rng = check_random_state(self.random_state)
            train_rows = np.sort(rng.choice(train_rows, max_rows, replace=False))
        classifier = (clone(self.classifier) if self.classifier is not None
                      else LogisticRegression(max_iter=1000))

        def mismatch(current):
            return np.hstack([e0, class_mismatch_vectors(current, src_lab, info.is_target,
                                                         len(classes))])

        current = codes.copy()
        E = mismatch(current)
        basis, A, FtE = self._prepare(X, info, E)
        Z = self._solve(basis, A, FtE, n)
        self.n_iter_ = 0
        for _ in range(n_iter if pseudo_rows.size else 0):
            model = clone(classifier).fit(Z[train_rows], codes[train_rows])
            predicted = np.asarray(model.predict(Z[pseudo_rows]), dtype=np.int64)
            if self.n_iter_ > 0 and np.array_equal(predicted, current[pseudo_rows]):
                break
            current[pseudo_rows] = predicted
            Z = self._solve(basis, A, basis.features_t_dot(mismatch(current)), n)
            self.n_iter_ += 1
        self.classes_ = classes
        used = current[pseudo_rows] if self.n_iter_ else np.zeros(0, dtype=np.int64)
        self.pseudo_labels_ = classes[used]
        return Z
