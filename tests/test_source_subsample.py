"""The autopilot's stratified subsample of a large source."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transferkit.autopilot import Autopilot
from transferkit.autopilot.source_subsample import source_subsample
from transferkit.domains import stack_domains
from transferkit.validation import TransferKitInputError


def tagged(sizes, n_target=30, seed=0, regression=False):
    """Source domains with the given (domain -> per-class row counts), and a target."""
    rng = np.random.default_rng(seed)
    Xs, ys = {}, {}
    for domain, counts in sizes.items():
        Xs[domain] = rng.normal(size=(sum(counts), 3))
        ys[domain] = (rng.normal(size=sum(counts)) if regression
                      else np.repeat(np.arange(len(counts)), counts))
    Xt = rng.normal(size=(n_target, 3))
    yt = rng.normal(size=n_target) if regression else rng.integers(0, 2, n_target)
    return stack_domains(Xs, ys, Xt, yt)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c"]),
                       st.lists(st.integers(1, 400), min_size=2, max_size=3), min_size=1),
       st.integers(1, 600), st.integers(0, 5))
def test_each_stratum_keeps_its_share_and_every_target_row_stays(sizes, max_rows, seed):
    X, y = tagged(sizes, seed=seed)
    rows = source_subsample(y, max_rows, random_state=seed)
    is_target = y["is_target"].to_numpy()
    assert np.all(np.diff(rows) > 0)                                # sorted, no repeats
    assert is_target[rows].sum() == is_target.sum()                 # every target row
    source = rows[~is_target[rows]]
    total = (~is_target).sum()
    strata = y["domain"].astype(str) + "/" + y["label"].astype(str)
    given_counts = strata[~is_target].value_counts()
    kept_counts = strata.iloc[source].value_counts().reindex(given_counts.index, fill_value=0)
    if total <= max_rows:
        assert len(source) == total
        return
    assert (kept_counts >= 1).all()                                 # no stratum dropped
    # the naive reference: each stratum's share of max_rows, rounded, at least one
    share = given_counts * max_rows / total
    assert (np.abs(kept_counts - np.maximum(1, share)) < 1.0).all()
    # one row more for each stratum raised to one (only those whose share is below 1)
    assert max_rows <= len(source) <= max_rows + int((share < 1).sum())


def test_regression_strata_are_label_deciles():
    X, y = tagged({"a": [5000], "b": [1000]}, regression=True, seed=1)
    rows = source_subsample(y, 600, random_state=0, task="regression")
    source = rows[~y["is_target"].to_numpy()[rows]]
    kept = y.iloc[source]
    assert len(source) == 600
    assert abs((kept["domain"] == "b").sum() - 100) <= 5      # the domain's share, +-rounding
    full = y.iloc[np.flatnonzero(~y["is_target"].to_numpy())]
    # the deciles of the kept labels match the source's closely
    assert np.allclose(np.quantile(kept["label"], [0.1, 0.5, 0.9]),
                       np.quantile(full["label"], [0.1, 0.5, 0.9]), atol=0.15)


def test_a_small_source_is_kept_whole():
    X, y = tagged({"a": [50, 50]})
    assert np.array_equal(source_subsample(y, 100), np.arange(len(y)))


def test_autopilot_on_a_subsample_is_the_autopilot_on_those_rows():
    X, y = tagged({"a": [400, 150], "b": [200, 60]}, n_target=60, seed=3)
    X = pd.DataFrame(X, columns=["f0", "f1", "f2"])
    settings_ = dict(strategies=["pooled", "coral"], n_repeats=1, shift_permutations=20,
                     random_state=0)
    cut = Autopilot(max_source_rows=300, **settings_).run(X, y)
    rows = source_subsample(y, 300, random_state=0)
    whole = Autopilot(max_source_rows=None, **settings_).run(
        X.iloc[rows].reset_index(drop=True), y.iloc[rows].reset_index(drop=True))
    timed = [c for c in cut.leaderboard.columns if "seconds" in c]
    pd.testing.assert_frame_equal(cut.leaderboard.drop(columns=timed),
                                  whole.leaderboard.drop(columns=timed))
    assert cut.members == whole.members
    assert cut.estimate.corrected == whole.estimate.corrected
    assert cut.task.n_source == 300 and cut.timings["source_rows"] == {"given": 810,
                                                                       "used": 300}
    assert any("subsample of 300" in note for note in cut.notes)
    assert whole.timings["source_rows"] == {"given": 300, "used": 300}


@pytest.mark.parametrize("bad", [0, -5, 2.5, "many", True])
def test_a_bad_max_source_rows_is_refused(bad):
    X, y = tagged({"a": [50, 50]})
    with pytest.raises(TransferKitInputError, match="max_source_rows: got .*expected: a whole number of at least 1"):
        Autopilot(max_source_rows=bad, strategies=["pooled"]).run(X, y)
