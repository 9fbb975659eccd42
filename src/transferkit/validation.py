"""Input validation for the whole library, in one place.

Every public entry point checks its inputs through these helpers, so a user
gets the same specific message (what is wrong, and how to fix it) whichever
door they came in by.  All errors are :class:`TransferKitInputError`, a
subclass of :class:`ValueError`, so ``except ValueError`` still works.

Example
-------
>>> import numpy as np
>>> from transferkit.validation import check_matrix
>>> check_matrix(np.ones((3, 2)), name="X_source").shape
(3, 2)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "TransferKitInputError",
    "check_matrix",
    "check_column",
    "check_same_columns",
    "describe_column_mismatch",
    "check_not_empty",
    "check_target_labels",
    "check_finite_labels",
]


class TransferKitInputError(ValueError):
    """Raised when user input is malformed; the message says how to fix it."""


def _suggest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=3)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def check_column(frame: pd.DataFrame, column: str, role: str) -> None:
    """Raise a clear error when ``column`` is not a column of ``frame``.

    ``role`` names what the column is for ("label", "domain"), so the message
    can say which setting to correct.
    """
    if column not in frame.columns:
        shown = ", ".join(map(repr, list(frame.columns)[:20]))
        more = " ..." if frame.shape[1] > 20 else ""
        raise TransferKitInputError(
            f"Unknown {role} column {column!r}: the table has columns [{shown}{more}]."
            f"{_suggest(column, frame.columns)} Set the {role} column to one of them."
        )


def check_same_columns(frames: dict[str, pd.DataFrame]) -> list[str]:
    """Check that every table has the same feature columns; return them.

    The column order of the first table is the reference; other tables may
    list the same columns in another order (they are re-ordered by callers).
    """
    names = list(frames)
    reference = list(frames[names[0]].columns)
    for name in names[1:]:
        mismatch = describe_column_mismatch(reference, frames[name].columns)
        if mismatch:
            raise TransferKitInputError(
                f"Mismatched columns between domains {names[0]!r} and {name!r}: "
                f"{name!r} has {mismatch}. All domains must share the same "
                "feature columns; rename or drop columns so they match."
            )
    return reference


def describe_column_mismatch(expected, got, ignore=()) -> str:
    """Say which of ``expected`` are missing from ``got`` and which are extra.

    Returns an empty string when the column sets agree (order ignored);
    names in ``ignore`` may appear in ``got`` without counting as extra.
    """
    expected, got = list(expected), list(got)
    expected_set, got_set, ignored = set(expected), set(got), set(ignore)
    missing = [c for c in expected if c not in got_set]
    extra = [c for c in got if c not in expected_set and c not in ignored]
    parts = []
    if missing:
        parts.append(f"missing columns {missing[:20]}")
    if extra:
        parts.append(f"unexpected columns {extra[:20]}")
    return " and ".join(parts)


def check_not_empty(n_rows: int, what: str) -> None:
    """Raise when a domain or table has no rows."""
    if n_rows == 0:
        raise TransferKitInputError(
            f"{what} is empty (0 rows). Each domain needs at least one row; "
            "check the file, the domain filter or the target selection."
        )


def repeated(values) -> list:
    """The values that occur more than once in ``values`` (as text), sorted.

    >>> repeated([1, "1", "a", "b", "a"])
    ['1', 'a']
    """
    seen, twice = set(), set()
    for value in map(str, values):
        (twice if value in seen else seen).add(value)
    return sorted(twice)


def check_unique_columns(columns, where: str) -> None:
    """Refuse column names given more than once (compared as text)."""
    twice = repeated(columns)
    if twice:
        raise TransferKitInputError(
            f"{where} names columns more than once: {twice[:10]}; rename them so that every "
            f"column name is unique.")


def _is_complex(X) -> bool:
    try:
        return bool(np.iscomplexobj(X))
    except (AttributeError, TypeError, ValueError):   # ragged or odd input: asarray says so
        return False


def check_matrix(
    X,
    name: str = "X",
    allow_nan: bool = False,
    dtype=np.float64,
    min_rows: int = 1,
    n_features: int | None = None,
    fitted_by: str = "the estimator",
) -> np.ndarray:
    """Convert ``X`` to a 2-D numeric array and check it.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n, d)
        Numeric data.  A 1-D input is rejected (ambiguous: one row or one
        feature?).
    name : str
        Name used in error messages.
    allow_nan : bool
        Whether NaN may appear (inf never may).
    dtype : numpy dtype
        Output dtype.
    min_rows : int
        Minimum number of rows.
    n_features : int, optional
        Required number of columns (the count a fitted estimator saw).
    fitted_by : str
        Name of that estimator, for the message.

    Returns
    -------
    numpy.ndarray of shape (n, d)
    """
    if isinstance(X, pd.DataFrame):
        non_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
        if non_numeric:
            raise TransferKitInputError(
                f"{name} has non-numeric columns {non_numeric[:10]}; this function needs "
                "numbers. Encode them first, e.g. with transferkit.TabularPreprocessor."
            )
    if _is_complex(X):
        raise TransferKitInputError(
            f"{name} holds complex numbers; transferkit works on real-valued features. Pass "
            "the real part, the magnitude, or both as separate columns.")
    try:
        array = np.asarray(X, dtype=dtype, order="C")  # one layout: same results for any input
    except (TypeError, ValueError) as exc:
        raise TransferKitInputError(
            f"{name} could not be read as a numeric array ({exc}). Pass numbers, or "
            "encode categorical columns first with transferkit.TabularPreprocessor."
        ) from None
    if array.ndim != 2:
        hint = " Use X.reshape(-1, 1) for a single feature." if array.ndim == 1 else ""
        raise TransferKitInputError(
            f"{name} must be 2-D (n_samples, n_features), got shape {array.shape}.{hint}"
        )
    if array.shape[0] < min_rows:
        raise TransferKitInputError(
            f"{name} has {array.shape[0]} rows; at least {min_rows} needed."
        )
    if array.shape[1] == 0:
        raise TransferKitInputError(f"{name} has no feature columns (shape {array.shape}).")
    if n_features is not None and array.shape[1] != n_features:
        raise TransferKitInputError(
            f"{name} has {array.shape[1]} features, but {fitted_by} was fitted with "
            f"{n_features}."
        )
    # One reduction, no temporary: a finite sum means every entry is finite (an
    # inf or NaN entry makes the sum inf or NaN); only then are the slower
    # element-wise checks below skipped.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(array.sum()):
            return array
    if np.isinf(array).any():
        rows = np.unique(np.nonzero(np.isinf(array))[0])[:5].tolist()
        raise TransferKitInputError(
            f"{name} contains infinite values (first rows: {rows}). Replace or drop them."
        )
    if not allow_nan and np.isnan(array).any():
        rows = np.unique(np.nonzero(np.isnan(array))[0])[:5].tolist()
        raise TransferKitInputError(
            f"{name} contains NaN (first rows: {rows}). Impute or drop missing values, "
            "or use transferkit.TabularPreprocessor, which imputes them."
        )
    return array


#: Magnitudes beyond which squared covariances (x^4) and distances leave float64's range
#: (about 1e-308 to 1e308) for the kernel, density-ratio and alignment methods.
SAFE_MAGNITUDE = (1e-75, 1e75)


def check_scale(X: np.ndarray, who: str) -> np.ndarray:
    """Refuse features whose magnitude (largest value) or spread (largest deviation from
    the column means) lies outside :data:`SAFE_MAGNITUDE`: squared distances, kernels and
    covariances of such data overflow or underflow float64, and ``who`` would return NaN
    or a meaningless result.  A constant matrix (spread 0) is left to the method."""
    peak = float(np.max(np.abs(X))) if X.size else 0.0
    low, high = SAFE_MAGNITUDE
    # below `high` neither the mean nor the deviations can overflow
    spread = float(np.max(np.abs(X - X.mean(axis=0)))) if X.size and peak < high else 0.0
    if peak >= high or 0.0 < spread < low:
        raise TransferKitInputError(
            f"{who}: the features are of magnitude {peak:.3g}"
            + ("" if peak >= high else f" and spread {spread:.3g}")
            + f", where its squared distances, kernels or covariances leave float64's range "
            f"({low:g} to {high:g}); standardise them first (transferkit.TabularPreprocessor "
            f"does, and the autopilot always does).")
    return X


def check_finite_labels(labels: np.ndarray, name: str = "y") -> None:
    """Reject infinite numeric labels (NaN means 'unlabelled' and is allowed)."""
    if labels.dtype.kind == "f" and np.isinf(labels).any():
        raise TransferKitInputError(
            f"{name} contains infinite values; labels must be finite (use NaN for "
            "unlabelled target rows)."
        )


def check_target_labels(
    source_labels: Sequence | np.ndarray,
    target_labels: Sequence | np.ndarray,
    task: str,
) -> None:
    """Checks on the labelled target rows of a classification task.

    Raises when the labelled target has a single class (no classifier can be
    evaluated on it) or has classes that never occur in the source (a source
    model cannot predict them, so transfer is ill-posed for them).
    """
    if task != "classification":
        return
    target_classes = pd.unique(pd.Series(np.asarray(target_labels, dtype=object)))
    if len(target_labels) and len(target_classes) < 2:
        raise TransferKitInputError(
            f"The labelled target rows have a single class ({target_classes[0]!r}); at "
            "least two classes are needed to train and evaluate a classifier. Label more "
            "target rows, or leave the target unlabelled for an unsupervised comparison."
        )
    if len(source_labels):
        source_set = set(pd.unique(pd.Series(np.asarray(source_labels, dtype=object))))
        absent = [c for c in target_classes if c not in source_set]
        if absent:
            raise TransferKitInputError(
                f"Target labels {absent} never occur in the source domain(s) (source "
                f"classes: {sorted(map(str, source_set))}). Check the label spelling and "
                "coding in both domains (e.g. 'bad' vs 'Bad', 1 vs '1')."
            )
