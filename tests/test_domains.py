"""The domain convention (stack_domains, split_table, read_domains, infer_task,
fit_domains) and the input checks of transferkit.validation."""

import numpy as np
import pandas as pd
import pytest

from transferkit.domains import (
    DomainAwareMixin,
    infer_task,
    read_domains,
    split_table,
    stack_domains,
    tag_domains,
)
from transferkit.validation import (
    TransferKitInputError,
    check_column,
    check_matrix,
    check_not_empty,
    check_same_columns,
    check_target_labels,
)


@pytest.fixture
def table():
    return pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
            "colour": ["r", "g", "r", "g", "b", "r", "g"],
            "Class": ["a", "b", "a", "b", "a", None, "b"],
            "state": ["CA", "CA", "TX", "TX", "WY", "WY", "VT"],
        }
    )


# ----------------------------------------------------------------- stack_domains
def test_stack_domains_arrays_rows_and_tags():
    Xs = np.arange(6.0).reshape(3, 2)
    Xt = 100 + np.arange(4.0).reshape(2, 2)
    X, y = stack_domains(Xs, [0, 1, 0], Xt, [1, None])
    np.testing.assert_array_equal(X, np.vstack([Xs, Xt]))
    assert list(y.columns) == ["label", "domain", "is_target"]
    assert y["domain"].tolist() == ["source"] * 3 + ["target"] * 2
    assert y["is_target"].tolist() == [False, False, False, True, True]
    assert y["label"].iloc[:4].tolist() == [0, 1, 0, 1]
    assert pd.isna(y["label"].iloc[4])


@pytest.mark.parametrize("source, target, column_dtype, kind", [
    ([0, 1, 0], [1, None], "Int64", "i"),  # integers with a missing label
    ([0, 1, 0], [1, 0], "int64", "i"),
    ([0.0, 1.0, 0.0], [1.0, None], "float64", "f"),  # floats stay floats
    (["a", "b", "a"], ["b", None], None, None)])
def test_integer_labels_stay_integers_with_missing_values(source, target, column_dtype, kind):
    """Integer class labels with unlabelled rows: a nullable integer column, integers
    back from labels_of (not 1.0), and floats with NaN in info.labels."""
    _, y = stack_domains(np.zeros((3, 1)), source, np.ones((2, 1)), target)
    if column_dtype is not None:
        assert str(y["label"].dtype) == column_dtype
    info = read_domains(y)
    values = info.labels_of(info.labelled)
    assert values.tolist() == [*source, *[t for t in target if t is not None]]
    if kind is not None:
        assert values.dtype.kind == kind
    if column_dtype == "Int64":
        assert info.labels.dtype == np.float64 and np.isnan(info.labels[4])
        assert info.labels_of(np.arange(5)).dtype == np.float64  # an unlabelled row: NaN


def test_classifier_predicts_the_integer_labels_it_was_given():
    from transferkit.baselines import TargetOnly
    rng = np.random.default_rng(0)
    X, y = stack_domains(rng.normal(size=(40, 2)), rng.integers(0, 2, 40),
                         rng.normal(size=(30, 2)), [0, 1] * 10 + [None] * 10)
    pred = TargetOnly().fit(X, y).predict(X[:5])
    assert pred.dtype.kind == "i" and set(pred.tolist()) <= {0, 1}


def test_stack_domains_unlabelled_target_by_default():
    X, y = stack_domains(np.zeros((3, 1)), ["a", "b", "a"], np.ones((2, 1)))
    info = read_domains(y)
    assert info.labelled.tolist() == [True, True, True, False, False]
    assert info.labelled_target.sum() == 0
    assert y["label"].iloc[:3].tolist() == ["a", "b", "a"]


def test_stack_domains_several_sources_keep_names_and_order():
    Xs = {"A": np.zeros((2, 2)), "B": np.ones((3, 2))}
    ys = {"A": [0, 1], "B": [1, 1, 0]}
    X, y = stack_domains(Xs, ys, np.full((1, 2), 7.0), [0], target_name="new")
    assert X.shape == (6, 2)
    assert y["domain"].tolist() == ["A", "A", "B", "B", "B", "new"]
    np.testing.assert_array_equal(X[2:5], np.ones((3, 2)))
    assert read_domains(y).source_domains == ["A", "B"]


def test_stack_domains_dataframes_reorders_columns():
    Xs = pd.DataFrame({"a": [1, 2], "b": [3, 4]}, index=[10, 11])
    Xt = pd.DataFrame({"b": [30], "a": [10]}, index=[5])
    X, y = stack_domains(Xs, pd.Series([0, 1], index=[10, 11]), Xt, [1])
    assert list(X.columns) == ["a", "b"]
    assert X.to_dict("list") == {"a": [1, 2, 10], "b": [3, 4, 30]}
    assert list(X.index) == [0, 1, 2] and list(y.index) == [0, 1, 2]
    assert y["label"].tolist() == [0, 1, 1]


def test_stack_domains_mismatched_dataframe_columns():
    with pytest.raises(TransferKitInputError, match=r"Mismatched columns.*missing columns \['b'\]"):
        stack_domains(pd.DataFrame({"a": [1], "b": [2]}), [0], pd.DataFrame({"a": [1]}))


def test_stack_domains_mismatched_array_widths():
    with pytest.raises(TransferKitInputError, match="Mismatched number of features"):
        stack_domains(np.zeros((2, 3)), [0, 1], np.zeros((2, 2)))


def test_stack_domains_mix_of_frames_and_arrays():
    with pytest.raises(TransferKitInputError, match="Mix of DataFrames and arrays"):
        stack_domains(pd.DataFrame({"a": [1.0]}), [0], np.zeros((1, 1)))


@pytest.mark.parametrize("where", ["source", "target"])
def test_stack_domains_empty_domain(where):
    empty, full = np.zeros((0, 2)), np.zeros((3, 2))
    with pytest.raises(TransferKitInputError, match="empty"):
        if where == "source":
            stack_domains(empty, [], full)
        else:
            stack_domains(full, [0, 1, 0], empty)


def test_stack_domains_infinite_label():
    with pytest.raises(TransferKitInputError, match="infinite"):
        stack_domains(np.zeros((2, 1)), [1.0, np.inf], np.zeros((1, 1)))


def test_stack_domains_label_length_mismatch():
    with pytest.raises(TransferKitInputError, match="3 labels.*2 rows"):
        stack_domains(np.zeros((2, 1)), [0, 1, 0], np.zeros((1, 1)))


def test_stack_domains_one_dimensional_features():
    with pytest.raises(TransferKitInputError, match="2-D"):
        stack_domains(np.zeros(3), [0, 1, 0], np.zeros(2))


def test_stack_domains_target_name_collision():
    with pytest.raises(TransferKitInputError, match="both for a source and for the target"):
        stack_domains({"target": np.zeros((1, 1))}, {"target": [0]}, np.zeros((1, 1)))


def test_stack_domains_dict_keys_must_match():
    with pytest.raises(TransferKitInputError, match="same domain names"):
        stack_domains({"A": np.zeros((1, 1))}, {"B": [0]}, np.zeros((1, 1)))


# ------------------------------------------------------------------- split_table
def test_split_table_default_sources(table):
    X, y = split_table(table, label="Class", domain="state", target=["WY", "VT"])
    assert list(X.columns) == ["x", "colour"]
    assert X["x"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert y["domain"].tolist() == ["CA", "CA", "TX", "TX", "target", "target", "target"]
    assert y["is_target"].tolist() == [False] * 4 + [True] * 3
    info = read_domains(y)
    assert info.labelled_target.tolist() == [False] * 4 + [True, False, True]


def test_split_table_scalar_target_and_sources(table):
    # A single string is one domain value, not a sequence of characters.
    X, y = split_table(table, label="Class", domain="state", target="WY", sources="CA")
    assert X["x"].tolist() == [1, 2, 5, 6]
    assert y["domain"].tolist() == ["CA", "CA", "target", "target"]


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"label": "Clas", "domain": "state"}, r"Unknown label column 'Clas'.*Did you mean 'Class'"),
        ({"label": "Class", "domain": "stat"}, r"Unknown domain column 'stat'.*Did you mean 'state'"),
        ({"label": "Class", "domain": "Class"}, "must differ"),
    ],
)
def test_split_table_unknown_columns(table, kwargs, pattern):
    with pytest.raises(TransferKitInputError, match=pattern):
        split_table(table, target="WY", **kwargs)


def test_split_table_unknown_target_domain(table):
    with pytest.raises(TransferKitInputError, match=r"Target domain\(s\) \['NV'\] not found.*'CA'"):
        split_table(table, label="Class", domain="state", target=["WY", "NV"])


def test_split_table_unknown_or_overlapping_sources(table):
    with pytest.raises(TransferKitInputError, match=r"Source domain\(s\) \['NV'\] not found"):
        split_table(table, label="Class", domain="state", target="WY", sources=["NV"])
    with pytest.raises(TransferKitInputError, match="both source and target"):
        split_table(table, label="Class", domain="state", target="WY", sources=["CA", "WY"])


def test_split_table_no_source_rows(table):
    with pytest.raises(TransferKitInputError, match="empty"):
        split_table(table, label="Class", domain="state", target=["CA", "TX", "WY", "VT"])


def test_split_table_rejects_non_frame():
    with pytest.raises(TransferKitInputError, match="DataFrame"):
        split_table(np.zeros((3, 3)), label="a", domain="b", target="c")


def test_split_table_infinite_label(table):
    table = table.assign(Class=[1.0, 0.0, 1.0, np.inf, 0.0, 1.0, 0.0])
    with pytest.raises(TransferKitInputError, match="infinite"):
        split_table(table, label="Class", domain="state", target="WY")


# ------------------------------------------------------------------ read_domains
@pytest.mark.parametrize(
    "y",
    [np.array([0, 1, 0]), pd.Series([0, 1, 0]), [0, 1, 0],
     pd.DataFrame({"label": [0, 1], "domain": ["s", "t"]})],
)
def test_read_domains_plain_y_mentions_stack_domains(y):
    with pytest.raises(TransferKitInputError, match="stack_domains"):
        read_domains(y)


def test_read_domains_needs_both_domains():
    only_source = tag_domains([0, 1], ["s", "s"], [False, False])
    only_target = tag_domains([0, 1], ["t", "t"], [True, True])
    with pytest.raises(TransferKitInputError, match="No target rows"):
        read_domains(only_source)
    with pytest.raises(TransferKitInputError, match="No source rows"):
        read_domains(only_target)


def test_read_domains_masks():
    y = tag_domains(["a", None, "b", np.nan], ["s", "s", "t", "t"], [False, False, True, True])
    info = read_domains(y)
    assert info.labelled.tolist() == [True, False, True, False]
    assert info.labelled_source.tolist() == [True, False, False, False]
    assert info.labelled_target.tolist() == [False, False, True, False]
    assert info.is_source.tolist() == [True, True, False, False]


# -------------------------------------------------------------------- infer_task
@pytest.mark.parametrize(
    "labels, task",
    [
        (["good", "bad", "good"], "classification"),
        ([0, 1, 1, 0], "classification"),
        ([1.0, 2.0, np.nan, 3.0], "classification"),
        ([True, False], "classification"),
        ([0.5, 1.25, 3.0], "regression"),
        (list(range(21)), "regression"),
        (list(range(20)), "classification"),
    ],
)
def test_infer_task(labels, task):
    assert infer_task(labels) == task


def test_infer_task_no_labels():
    with pytest.raises(TransferKitInputError, match="No labelled rows"):
        infer_task([np.nan, None])


# ------------------------------------------------------------------- fit_domains
def test_fit_domains_passes_stacked_data():
    class Recorder(DomainAwareMixin):
        def fit(self, X, y, **params):
            self.X, self.y, self.params = X, y, params
            return self

    Xs, Xt = np.zeros((2, 1)), np.ones((3, 1))
    est = Recorder().fit_domains(Xs, [0, 1], Xt, [1, None, 0], flag=True)
    X_ref, y_ref = stack_domains(Xs, [0, 1], Xt, [1, None, 0])
    np.testing.assert_array_equal(est.X, X_ref)
    pd.testing.assert_frame_equal(est.y, y_ref)
    assert est.params == {"flag": True}


# -------------------------------------------------------------------- validation
def test_check_matrix_finite_values_whose_sum_overflows_pass():
    big = np.full((3, 2), 1e308)
    np.testing.assert_array_equal(check_matrix(big), big)
    with pytest.raises(TransferKitInputError, match="infinite"):
        check_matrix(np.vstack([big, [[np.inf, 0.0]]]))
    with pytest.raises(TransferKitInputError, match="NaN"):
        check_matrix(np.vstack([big, [[np.nan, 0.0]]]))


def test_check_matrix_converts_and_rejects():
    out = check_matrix([[1, 2], [3, 4]], name="Z")
    assert out.dtype == np.float64 and out.shape == (2, 2)
    with pytest.raises(TransferKitInputError, match=r"Z must be 2-D.*reshape"):
        check_matrix(np.ones(3), name="Z")
    with pytest.raises(TransferKitInputError, match=r"Z contains NaN \(first rows: \[1\]\)"):
        check_matrix([[1.0], [np.nan]], name="Z")
    assert np.isnan(check_matrix([[1.0], [np.nan]], allow_nan=True)[1, 0])
    with pytest.raises(TransferKitInputError, match=r"infinite values \(first rows: \[0\]\)"):
        check_matrix([[np.inf], [1.0]], allow_nan=True)
    with pytest.raises(TransferKitInputError, match=r"non-numeric columns \['c'\]"):
        check_matrix(pd.DataFrame({"n": [1.0], "c": ["x"]}))
    with pytest.raises(TransferKitInputError, match="could not be read as a numeric"):
        check_matrix([["a", "b"]])
    with pytest.raises(TransferKitInputError, match="at least 3 needed"):
        check_matrix(np.ones((2, 2)), min_rows=3)
    with pytest.raises(TransferKitInputError, match="no feature columns"):
        check_matrix(np.ones((2, 0)))


def test_check_column_suggests():
    frame = pd.DataFrame(columns=["income", "age"])
    check_column(frame, "age", "label")
    with pytest.raises(TransferKitInputError, match=r"Unknown label column 'incme'.*Did you mean 'income'"):
        check_column(frame, "incme", "label")


def test_check_same_columns():
    frames = {"A": pd.DataFrame(columns=["a", "b"]), "B": pd.DataFrame(columns=["b", "a"])}
    assert check_same_columns(frames) == ["a", "b"]
    frames["C"] = pd.DataFrame(columns=["a", "z"])
    with pytest.raises(TransferKitInputError,
                       match=r"'A' and 'C'.*missing columns \['b'\] and unexpected columns \['z'\]"):
        check_same_columns(frames)


def test_check_not_empty():
    check_not_empty(1, "Domain X")
    with pytest.raises(TransferKitInputError, match="Domain X is empty"):
        check_not_empty(0, "Domain X")


def test_check_target_labels_single_class():
    with pytest.raises(TransferKitInputError, match=r"single class \('bad'\)"):
        check_target_labels(["good", "bad"], ["bad", "bad"], "classification")


def test_check_target_labels_absent_from_source():
    with pytest.raises(TransferKitInputError, match=r"Target labels \['Bad'\] never occur"):
        check_target_labels(["good", "bad"], ["good", "Bad"], "classification")


def test_check_target_labels_accepts_valid_and_regression():
    check_target_labels(["good", "bad"], ["bad", "good", "bad"], "classification")
    check_target_labels([0, 1], [1.0, 0.0], "classification")  # same numbers, other dtype
    check_target_labels([1.5, 2.5], [7.0, 7.0], "regression")  # no class checks
    check_target_labels(["a", "b"], [], "classification")  # unlabelled target is fine
