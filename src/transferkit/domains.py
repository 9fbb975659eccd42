"""The domain convention: how source and target rows travel together.

transferkit stacks the rows of every domain into one feature table ``X`` and
carries *which domain each row comes from* inside ``y``.  The tagged ``y`` is
a :class:`pandas.DataFrame` with three columns:

``label``
    The row's label; missing (``NaN``/``None``) for unlabelled rows.
``domain``
    The name of the row's domain (e.g. ``"source"``, ``"CA"``, ``"target"``).
``is_target``
    ``True`` for target rows, ``False`` for source rows.

Why in ``y``?  scikit-learn hands ``y`` unchanged to every step of a
``Pipeline``, to cross-validation splitters and (the test part) to scorers,
and indexes it together with ``X``.  So a tagged ``y`` flows through
``Pipeline``, ``cross_validate`` and ``GridSearchCV`` with no metadata
routing, no ``set_fit_request`` and no global configuration, and several
source domains are just several ``domain`` values.  Plain transformers such
as ``StandardScaler`` ignore ``y``; transferkit estimators read the tags.
At ``predict``/``transform`` time no tags are needed: new rows are taken to
come from the target domain.

For the common case of separate arrays use :func:`stack_domains`; for one
table with a domain column use :func:`split_table`.

Example
-------
>>> import numpy as np
>>> from transferkit.domains import stack_domains, read_domains
>>> X, y = stack_domains(np.zeros((3, 2)), [0, 1, 0], np.ones((2, 2)), [1, None])
>>> X.shape, list(y.columns)
((5, 2), ['label', 'domain', 'is_target'])
>>> info = read_domains(y)
>>> int(info.is_target.sum()), int(info.labelled_target.sum())
(2, 1)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from transferkit.validation import (
    TransferKitInputError,
    check_column,
    check_finite_labels,
    check_not_empty,
    check_same_columns,
    check_unique_columns,
    repeated,
)

__all__ = [
    "LABEL",
    "DOMAIN",
    "IS_TARGET",
    "DomainInfo",
    "tag_domains",
    "read_domains",
    "domain_rows",
    "row_block",
    "stack_domains",
    "split_table",
    "infer_task",
    "DomainAwareMixin",
]

LABEL = "label"
DOMAIN = "domain"
IS_TARGET = "is_target"
_TAG_COLUMNS = [LABEL, DOMAIN, IS_TARGET]


@dataclass(frozen=True)
class DomainInfo:
    """The tags of a tagged ``y`` as plain arrays (see :func:`read_domains`).

    ``domains`` (an object array of names) is built from ``domain_column`` on
    first use: most estimators only need ``is_target``.
    """

    labels: np.ndarray
    domain_column: pd.Series = field(repr=False)
    is_target: np.ndarray
    labelled: np.ndarray
    #: dtype the labelled rows' labels were given in, when ``labels`` cannot hold it
    #: (integer labels of a column with missing values are stored as floats)
    label_dtype: np.dtype | None = None

    @cached_property
    def domains(self) -> np.ndarray:
        """The domain name of each row."""
        return self.domain_column.to_numpy(dtype=object)

    def labels_of(self, rows) -> np.ndarray:
        """The labels of ``rows`` (a mask or indices) in the type they were given.

        ``labels[rows]``, except that integer class labels of a column with missing
        values (stored as floats with NaN) come back as integers when every one
        of ``rows`` is labelled: a classifier trained on them then predicts
        ``1``, not ``1.0``.
        """
        values = self.labels[rows]
        if self.label_dtype is not None and not np.isnan(values).any():
            return values.astype(self.label_dtype)
        return values

    @property
    def is_source(self) -> np.ndarray:
        return ~self.is_target

    @property
    def labelled_source(self) -> np.ndarray:
        return self.labelled & ~self.is_target

    @property
    def labelled_target(self) -> np.ndarray:
        return self.labelled & self.is_target

    @property
    def source_domains(self) -> list:
        """Names of the source domains, in order of first appearance."""
        return list(pd.unique(pd.Series(self.domains[~self.is_target], dtype=object)))


def _missing(labels: np.ndarray) -> np.ndarray:
    if labels.dtype.kind == "f":
        return np.isnan(labels)
    if labels.dtype.kind in "iub":
        return np.zeros(labels.shape, dtype=bool)
    return np.asarray(pd.isna(pd.Series(labels, dtype=object)), dtype=bool)


def _as_labels(y, n_rows: int, name: str) -> np.ndarray:
    if y is None:
        return np.full(n_rows, np.nan, dtype=object)
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise TransferKitInputError(
                f"{name} must be one column of labels, got a table with columns "
                f"{list(y.columns)}."
            )
        y = y.iloc[:, 0]
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise TransferKitInputError(f"{name} must be 1-D, got shape {labels.shape}.")
    if labels.shape[0] != n_rows:
        raise TransferKitInputError(
            f"{name} has {labels.shape[0]} labels but its feature table has {n_rows} rows."
        )
    check_finite_labels(labels, name)
    return labels


def tag_domains(labels, domains, is_target) -> pd.DataFrame:
    """Build a tagged ``y`` from three aligned 1-D sequences."""
    labels = np.asarray(labels, dtype=object)
    tagged = pd.DataFrame(
        {
            LABEL: labels,
            DOMAIN: np.asarray(domains, dtype=object),
            IS_TARGET: np.asarray(is_target, dtype=bool),
        }
    )
    # Present missing labels uniformly as NaN, and numbers as numbers; integer labels
    # with missing values become a nullable integer column ("Int64"), not floats.
    tagged[LABEL] = tagged[LABEL].where(~tagged[LABEL].isna(), np.nan)
    converted = pd.to_numeric(tagged[LABEL], errors="coerce")
    if converted.notna().sum() == tagged[LABEL].notna().sum():
        if (converted.dtype.kind == "f"
                and pd.api.types.infer_dtype(tagged[LABEL], skipna=True) == "integer"):
            converted = converted.astype("Int64")
        tagged[LABEL] = converted
    return tagged


def row_block(mask: np.ndarray):
    """The rows selected by ``mask``: a ``slice`` when they are one contiguous block
    (the stacked layout of :func:`stack_domains` and :func:`split_table`), else
    their indices.  Indexing with a slice gives a view instead of a copy.

    >>> row_block(np.array([False, True, True, False]))
    slice(1, 3, None)
    >>> row_block(np.array([True, False, True, False]))
    array([0, 2])
    """
    index = np.flatnonzero(mask)
    if index.size and index[-1] - index[0] + 1 == index.size:
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def domain_rows(X: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``X[mask]``; a view, not a copy, when the selected rows are one contiguous block.

    The result may share memory with ``X``: read it, do not write to it.

    >>> X = np.arange(8.0).reshape(4, 2)
    >>> np.shares_memory(domain_rows(X, np.array([False, True, True, False])), X)
    True
    """
    return X[row_block(mask)]


def read_domains(y, n_rows: int | None = None) -> DomainInfo:
    """Read a tagged ``y`` (see the module docstring) into a :class:`DomainInfo`.

    Raises a clear error for a plain label vector, which carries no domains,
    and, when ``n_rows`` (the number of rows of ``X``) is given, for a ``y``
    that does not align with ``X``.
    """
    if isinstance(y, pd.DataFrame) and list(y.columns[:3]) != _TAG_COLUMNS and (
            set(y.columns) & set(_TAG_COLUMNS)):
        missing = [c for c in _TAG_COLUMNS if c not in y.columns]
        raise TransferKitInputError(
            f"y looks like a tagged table but its columns are {list(y.columns)[:6]}; it needs "
            f"{_TAG_COLUMNS} in that order" + (f" (missing: {missing})" if missing else "")
            + ". Build it with transferkit.stack_domains(...) or split_table(...).")
    if not isinstance(y, pd.DataFrame) or list(y.columns[:3]) != _TAG_COLUMNS:
        raise TransferKitInputError(
            "This transferkit estimator needs to know which rows are source and which "
            "are target, so y must be the tagged table made by "
            "transferkit.stack_domains(X_source, y_source, X_target, y_target) or "
            "transferkit.split_table(...); got "
            f"{type(y).__name__}. For two separate arrays you can also call "
            "est.fit_domains(X_source, y_source, X_target, y_target)."
        )
    label_column, label_dtype = y[LABEL], None
    if (pd.api.types.is_extension_array_dtype(label_column.dtype)
            and pd.api.types.is_integer_dtype(label_column.dtype)):
        # nullable integers (missing labels): floats with NaN, like every other numeric
        # column with missing labels; labels_of gives the integers back
        labels = label_column.to_numpy(dtype=np.float64, na_value=np.nan)
        label_dtype = np.dtype(np.int64)
    else:
        labels = label_column.to_numpy()
    if n_rows is not None and n_rows != len(labels):
        raise TransferKitInputError(
            f"X has {n_rows} rows but y has {len(labels)}; they must align."
        )
    is_target = y[IS_TARGET].to_numpy(dtype=bool)
    labelled = ~_missing(labels)
    if not (~is_target).any():
        raise TransferKitInputError(
            "No source rows: every row is tagged as target. Transfer needs at least one "
            "source domain with rows."
        )
    if not is_target.any():
        raise TransferKitInputError(
            "No target rows: every row is tagged as source. Add the target domain's rows "
            "(labelled or not)."
        )
    return DomainInfo(
        labels=labels,
        domain_column=y[DOMAIN],
        label_dtype=label_dtype,
        is_target=is_target,
        labelled=labelled,
    )


def _stack_features(tables: dict[str, object]):
    kinds = {isinstance(t, pd.DataFrame) for t in tables.values()}
    if len(kinds) > 1:
        raise TransferKitInputError(
            "Mix of DataFrames and arrays across domains: pass every domain's features "
            "the same way (all DataFrames with the same columns, or all arrays)."
        )
    if kinds == {True}:
        columns = check_same_columns(tables)  # type: ignore[arg-type]
        return pd.concat(
            [t[columns] for t in tables.values()], axis=0, ignore_index=True
        )  # type: ignore[index]
    arrays = {}
    for name, table in tables.items():
        array = np.asarray(table)
        if array.ndim != 2:
            raise TransferKitInputError(
                f"Features of domain {name!r} must be 2-D (n_samples, n_features), got "
                f"shape {array.shape}."
            )
        arrays[name] = array
    widths = {name: a.shape[1] for name, a in arrays.items()}
    if len(set(widths.values())) > 1:
        raise TransferKitInputError(
            f"Mismatched number of features between domains: {widths}. All domains must "
            "have the same features in the same order."
        )
    return np.vstack(list(arrays.values()))


def _same_rows(a, b) -> bool:
    """Whether two domains' feature tables hold identical rows (a target that is a source)."""
    if len(a) != len(b) or len(a) == 0:
        return False
    if isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame):
        if list(map(str, a.columns)) != list(map(str, b.columns)):
            return False
        return bool(a.reset_index(drop=True).equals(b.reset_index(drop=True)))
    try:
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    except (TypeError, ValueError):
        return False


def stack_domains(
    X_source,
    y_source,
    X_target,
    y_target=None,
    *,
    target_name: str = "target",
):
    """Stack source and target rows into ``(X, y_tagged)``.

    Parameters
    ----------
    X_source : array-like or DataFrame, or dict of name -> features
        Source features.  A dict gives several named source domains.
    y_source : array-like, or dict of name -> labels
        Source labels (same structure as ``X_source``).  Missing values mark
        unlabelled source rows.
    X_target : array-like or DataFrame
        Target features.
    y_target : array-like or None
        Target labels; ``None`` (or NaN/None entries) for unlabelled rows.
    target_name : str
        Domain name given to the target rows.

    Returns
    -------
    X : DataFrame or ndarray of shape (n_source + n_target, d)
        Source rows first, then target rows.
    y : DataFrame
        The tagged ``y`` (columns ``label``, ``domain``, ``is_target``).
    """
    if isinstance(X_source, Mapping):
        if not isinstance(y_source, Mapping) or set(y_source) != set(X_source):
            raise TransferKitInputError(
                "With several source domains, pass X_source and y_source as dicts with "
                "the same domain names as keys."
            )
        names = [str(k) for k in X_source]
        if any(not n.strip() for n in names):
            raise TransferKitInputError(
                "A source domain has an empty name; give every source a non-empty name.")
        twice = repeated(names)
        if twice:
            raise TransferKitInputError(
                f"Source domain names {twice} repeat once turned into text (keys such as 1 "
                f"and '1' name the same domain); give every source a distinct name.")
        sources = {str(k): (X_source[k], y_source[k]) for k in X_source}
    else:
        sources = {"source": (X_source, y_source)}
    if not sources:
        raise TransferKitInputError("No source domain given.")
    if target_name in sources:
        raise TransferKitInputError(
            f"Domain name {target_name!r} is used both for a source and for the target; "
            "pick another target_name."
        )
    tables, labels, domains, is_target = {}, [], [], []
    for name, (X, y) in sources.items():
        n = len(X)
        check_not_empty(n, f"Source domain {name!r}")
        tables[name] = X
        labels.append(_as_labels(y, n, f"y_source[{name!r}]"))
        domains.append(np.full(n, name, dtype=object))
        is_target.append(np.zeros(n, dtype=bool))
    n_target = len(X_target)
    check_not_empty(n_target, "The target domain")
    tables[target_name] = X_target
    labels.append(_as_labels(y_target, n_target, "y_target"))
    domains.append(np.full(n_target, target_name, dtype=object))
    is_target.append(np.ones(n_target, dtype=bool))
    for name, table in tables.items():
        if isinstance(table, pd.DataFrame):
            check_unique_columns(table.columns, f"Domain {name!r}")
    for name, (X, _) in sources.items():
        if _same_rows(X, X_target):
            raise TransferKitInputError(
                f"The target rows are the same as the rows of source {name!r} (same file or "
                f"same table): the target would leak into the source. Give the target "
                f"domain's own rows.")
    X = _stack_features(tables)
    y = tag_domains(
        np.concatenate([np.asarray(lab, dtype=object) for lab in labels]),
        np.concatenate(domains),
        np.concatenate(is_target),
    )
    return X, y


def _as_values(value) -> list:
    """One domain value or a collection of them, as a list (a string is one value)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def split_table(
    table: pd.DataFrame,
    label: str,
    domain: str,
    target: object | Sequence,
    sources: Sequence | None = None,
):
    """Split one table with a domain column into ``(X, y_tagged)``.

    Parameters
    ----------
    table : DataFrame
        Rows of every domain; unlabelled rows have a missing label.
    label : str
        Name of the label column.
    domain : str
        Name of the column holding each row's domain.
    target : value or list of values
        Domain value(s) whose rows form the target domain.
    sources : list of values, optional
        Domain values to use as sources; default: every other domain.

    Returns
    -------
    X : DataFrame
        The feature columns (label and domain columns dropped).
    y : DataFrame
        The tagged ``y``; the target rows get domain name ``"target"``.
    """
    if not isinstance(table, pd.DataFrame):
        raise TransferKitInputError("split_table needs a pandas DataFrame.")
    check_column(table, label, "label")
    check_column(table, domain, "domain")
    if label == domain:
        raise TransferKitInputError("The label and domain columns must differ.")
    targets = _as_values(target)
    values = table[domain]
    blank = values.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
    missing = np.flatnonzero(values.isna().to_numpy() | blank)
    if missing.size:
        raise TransferKitInputError(
            f"The domain column {domain!r} is empty in {missing.size} row(s) (first rows: "
            f"{missing[:5].tolist()}, counting from 0 after the header); give every row its "
            f"domain or drop those rows.")
    distinct = pd.unique(values.astype(object))
    clash = repeated(distinct)
    if clash:
        raise TransferKitInputError(
            f"The domain column {domain!r} holds values that differ in type but read the "
            f"same as text ({clash[:5]}, e.g. 1 and '1'); make them one value or two "
            f"distinct names.")
    present = set(distinct)
    unknown = [t for t in targets if t not in present]
    if unknown:
        raise TransferKitInputError(
            f"Target domain(s) {unknown} not found in column {domain!r}; it holds "
            f"{sorted(map(str, present))[:30]}."
        )
    is_target = values.isin(targets).to_numpy()
    if sources is None:
        keep = np.ones(len(table), dtype=bool)
    else:
        sources = _as_values(sources)
        unknown = [s for s in sources if s not in present]
        if unknown:
            raise TransferKitInputError(
                f"Source domain(s) {unknown} not found in column {domain!r}."
            )
        overlap = set(sources) & set(targets)
        if overlap:
            raise TransferKitInputError(
                f"Domain(s) {sorted(map(str, overlap))} are both source and target."
            )
        keep = is_target | values.isin(list(sources)).to_numpy()
    check_not_empty(int((keep & ~is_target).sum()), "The source domain (all non-target rows)")
    if "target" in set(values[keep & ~is_target].astype(str)):
        raise TransferKitInputError(
            f"A source domain in column {domain!r} is called 'target', the name the target "
            f"rows get; rename that domain.")
    sub = table.loc[keep]
    labels = sub[label].to_numpy(dtype=object)
    check_finite_labels(np.asarray(sub[label]), label)
    domains = np.where(is_target[keep], "target", sub[domain].astype(str).to_numpy())
    X = sub.drop(columns=[label, domain]).reset_index(drop=True)
    return X, tag_domains(labels, domains, is_target[keep])


def infer_task(labels) -> str:
    """Guess ``"classification"`` or ``"regression"`` from the labelled values.

    Strings, booleans and categories mean classification; numbers with a
    fractional part mean regression; whole numbers with at most 20 distinct
    values mean classification.  Pass the task explicitly where this guess is
    wrong.
    """
    series = pd.Series(np.asarray(labels, dtype=object)).dropna()
    if series.empty:
        raise TransferKitInputError("No labelled rows: cannot tell the task type.")
    numeric = pd.to_numeric(series, errors="coerce")
    if numeric.isna().any() or series.map(lambda v: isinstance(v, (bool, np.bool_))).any():
        return "classification"
    values = numeric.to_numpy(dtype=float)
    if np.all(values == np.round(values)) and len(np.unique(values)) <= 20:
        return "classification"
    return "regression"


class DomainAwareMixin:
    """Adds ``fit_domains`` (separate source/target arrays) to an estimator."""

    def fit_domains(self, X_source, y_source, X_target, y_target=None, **fit_params):
        """Fit from separate source and target data; see :func:`stack_domains`."""
        X, y = stack_domains(X_source, y_source, X_target, y_target)
        return self.fit(X, y, **fit_params)
