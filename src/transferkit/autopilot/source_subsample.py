"""A stratified subsample of a large source, so the autopilot's cost stops growing with it.

Every strategy is fitted ``n_splits x n_repeats`` times; on a source of 50,000
or 1,000,000 rows that is what makes a run take hours.  Above
``max_source_rows`` source rows the autopilot keeps a random subsample of
that many, drawn within strata so the source's make-up survives: one stratum
per (source domain, class) for classification, per (source domain, decile
of the label) for regression, and one per source domain for the unlabelled
source rows.  Each stratum keeps its share of the subsample (Hamilton's
largest-remainder rounding of ``max_rows * size / total``), and at least one
row, so a rare class or a small source domain is never dropped (the
subsample then holds a row more for each stratum so raised).  Target rows
are never dropped.  The subsample is used for the evaluation *and* the refit,
so the estimate describes the model that ships; what it costs in accuracy
is measured by ``benchmarks/bench_autopilot_cost.py`` (full source against
the subsample, in the same run).

Example
-------
>>> import numpy as np, pandas as pd
>>> from transferkit.domains import stack_domains
>>> rng = np.random.default_rng(0)
>>> X, y = stack_domains(rng.normal(size=(1000, 2)), rng.integers(0, 2, 1000),
...                      rng.normal(size=(50, 2)), rng.integers(0, 2, 50))
>>> rows = source_subsample(y, 300, random_state=0)
>>> len(rows), int(y["is_target"].to_numpy()[rows].sum())
(350, 50)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from transferkit.domains import DomainInfo, read_domains
from transferkit.validation import TransferKitInputError

__all__ = ["DEFAULT_MAX_SOURCE_ROWS", "source_subsample", "check_max_source_rows"]

#: Source rows above which the autopilot subsamples the source (module docstring).
DEFAULT_MAX_SOURCE_ROWS = 20_000

_REGRESSION_BINS = 10


def check_max_source_rows(value):
    """``value`` if it is None or a whole number of at least 1, else a clear error."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < 1:
        raise TransferKitInputError(
            f"max_source_rows must be a whole number of at least 1 source row, or None to "
            f"use every source row; got {value!r}.")
    return int(value)


def _strata(info: DomainInfo, task: str) -> np.ndarray:
    """A stratum label for every source row (module docstring)."""
    source = ~info.is_target
    domains = info.domains[source].astype(str)
    labelled = info.labelled[source]
    labels = np.full(source.sum(), "unlabelled", dtype=object)
    values = info.labels[source][labelled]
    if task == "classification":
        labels[labelled] = values.astype(str)
    elif labelled.any():
        edges = np.unique(np.quantile(values.astype(float),
                                      np.linspace(0, 1, _REGRESSION_BINS + 1)[1:-1]))
        labels[labelled] = np.searchsorted(edges, values.astype(float)).astype(str)
    return pd.Series(domains).str.cat(pd.Series(labels, dtype=str), sep="\x1f").to_numpy()


def _allocate(sizes: np.ndarray, total: int) -> np.ndarray:
    """Rows per stratum: ``total * size / sum(sizes)`` rounded by largest remainder
    (they sum to ``total``), then raised to 1 where that gave 0."""
    share = sizes * total / sizes.sum()
    keep = np.floor(share).astype(int)
    order = np.argsort(-(share - keep), kind="stable")
    keep[order[:total - keep.sum()]] += 1
    return np.maximum(keep, 1)


def source_subsample(y, max_rows: int, random_state=0, task: str = "classification"):
    """Row positions to keep: every target row and a stratified subsample of
    ``max_rows`` source rows (all of them when the source is no larger; one more
    per stratum raised to one row), sorted.

    Parameters
    ----------
    y : tagged y (:func:`~transferkit.domains.stack_domains`)
    max_rows : int
    random_state : int or None
    task : {"classification", "regression"}
    """
    info = read_domains(y)
    source_rows = np.flatnonzero(~info.is_target)
    if source_rows.size <= max_rows:
        return np.arange(len(info.labels))
    strata = _strata(info, task)
    names, codes, sizes = np.unique(strata, return_inverse=True, return_counts=True)
    keep = _allocate(sizes, max_rows)
    rng = np.random.default_rng(random_state)
    chosen = [rng.choice(source_rows[codes == k], size=int(keep[k]), replace=False)
              for k in range(names.size)]
    return np.sort(np.concatenate([np.flatnonzero(info.is_target), *chosen]))
