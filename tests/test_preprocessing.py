"""TabularPreprocessor against hand computations."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from transferkit.domains import stack_domains
from transferkit.preprocessing import TabularPreprocessor, split_column_types
from transferkit.validation import TransferKitInputError


@pytest.fixture
def frame():
    return pd.DataFrame(
        {
            "age": [20.0, np.nan, 40.0, 50.0, 35.0],
            "income": [1, 2, 3, 4, 100],
            "city": ["a", "b", None, "a", "c"],
            "flag": [True, False, True, True, False],
        }
    )


def _column(pre, Z, name):
    names = list(pre.get_feature_names_out())
    return Z[:, names.index(name)]


def test_split_column_types(frame):
    assert split_column_types(frame) == (["age", "income"], ["city", "flag"])


def test_numeric_median_imputation_and_standardisation(frame):
    pre = TabularPreprocessor().fit(frame)
    Z = pre.transform(frame)
    age = frame["age"].to_numpy()
    imputed = np.where(np.isnan(age), np.nanmedian(age), age)  # median of 20, 40, 50, 35 = 37.5
    assert imputed[1] == 37.5
    expected = (imputed - imputed.mean()) / imputed.std()
    np.testing.assert_allclose(_column(pre, Z, "numeric__age"), expected)
    income = frame["income"].to_numpy(dtype=float)
    np.testing.assert_allclose(_column(pre, Z, "numeric__income"),
                               (income - income.mean()) / income.std())


def test_missing_indicator_only_for_columns_with_missing_values(frame):
    pre = TabularPreprocessor().fit(frame)
    Z = pre.transform(frame)
    names = list(pre.get_feature_names_out())
    indicators = [n for n in names if "missingindicator" in n]
    assert len(indicators) == 1 and indicators[0].endswith("_age")
    ind = _column(pre, Z, indicators[0])
    missing = frame["age"].isna().to_numpy()
    # Two values: the missing row gets the larger one.
    assert len(np.unique(ind)) == 2 and ind[missing].min() > ind[~missing].max()


def test_one_hot_with_mode_imputation_and_unseen_levels(frame):
    pre = TabularPreprocessor().fit(frame)
    Z = pre.transform(frame)
    np.testing.assert_array_equal(_column(pre, Z, "categorical__city_a"), [1, 0, 1, 1, 0])
    np.testing.assert_array_equal(_column(pre, Z, "categorical__city_b"), [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(_column(pre, Z, "categorical__flag_True"), [1, 0, 1, 1, 0])
    new = frame.iloc[:2].assign(city=["zzz", "b"])
    Znew = pre.transform(new)
    city_cols = [i for i, n in enumerate(pre.get_feature_names_out()) if "city_" in n]
    np.testing.assert_array_equal(Znew[0, city_cols], 0.0)
    assert Znew[1, city_cols].sum() == 1.0
    assert pre.n_features_out_ == Z.shape[1] == 2 + 1 + 3 + 2


def test_categorical_and_bool_dtypes_are_categorical():
    df = pd.DataFrame({"c": pd.Categorical(["x", "y", "x"]), "n": [1.0, 2.0, 3.0]})
    pre = TabularPreprocessor().fit(df)
    assert pre.categorical_columns_ == ["c"] and pre.numeric_columns_ == ["n"]
    np.testing.assert_array_equal(_column(pre, pre.transform(df), "categorical__c_y"), [0, 1, 0])


def test_max_categories_groups_rare_levels():
    df = pd.DataFrame({"c": list("aaaabbbccd")})
    pre = TabularPreprocessor(max_categories=3).fit(df)
    Z = pre.transform(pd.DataFrame({"c": ["a", "c", "d"]}))
    assert Z.shape == (3, 3)
    np.testing.assert_array_equal(Z.sum(axis=1), 1.0)
    np.testing.assert_array_equal(Z[1], Z[2])  # c and d share the infrequent column


def test_fitted_once_across_domains():
    """Statistics come from the union of the source and target rows."""
    Xs = pd.DataFrame({"v": [0.0, 1.0, 2.0], "c": ["s", "s", "s"]})
    Xt = pd.DataFrame({"v": [10.0, np.nan], "c": ["t", "t"]})
    X, y = stack_domains(Xs, [0, 1, 0], Xt, [1, 0])
    pre = TabularPreprocessor().fit(X, y)
    union = np.array([0.0, 1.0, 2.0, 10.0, 1.5])  # NaN -> median of the union (1.5)
    np.testing.assert_allclose(_column(pre, pre.transform(Xt), "numeric__v"),
                               ((union - union.mean()) / union.std())[3:])
    # Both domains' levels are known, so neither encodes as all zeros.
    Z = pre.transform(X)
    city = [i for i, n in enumerate(pre.get_feature_names_out()) if n.startswith("categorical")]
    np.testing.assert_array_equal(Z[:, city].sum(axis=1), 1.0)


def test_column_order_at_transform_does_not_matter(frame):
    pre = TabularPreprocessor().fit(frame)
    np.testing.assert_array_equal(pre.transform(frame[frame.columns[::-1]]), pre.transform(frame))


def test_missing_column_at_transform(frame):
    pre = TabularPreprocessor().fit(frame)
    with pytest.raises(TransferKitInputError, match=r"Missing columns \['income'\]"):
        pre.transform(frame.drop(columns=["income"]))


def test_array_at_transform_after_dataframe_fit(frame):
    pre = TabularPreprocessor().fit(frame[["age", "income"]])
    with pytest.raises(TransferKitInputError, match="fitted on a DataFrame"):
        pre.transform(frame[["age", "income"]].to_numpy())


def test_text_in_numeric_column_at_transform(frame):
    pre = TabularPreprocessor().fit(frame)
    bad = frame.astype({"income": object})
    bad.loc[2, "income"] = "n/a"
    with pytest.raises(TransferKitInputError, match=r"'income'.*non-numeric values \['n/a'\]"):
        pre.transform(bad)


@pytest.mark.parametrize("stage", ["fit", "transform"])
def test_infinite_values(frame, stage):
    bad = frame.assign(income=[1.0, np.inf, 3.0, 4.0, 5.0])
    pre = TabularPreprocessor()
    with pytest.raises(TransferKitInputError, match=r"'income'.*infinite"):
        if stage == "fit":
            pre.fit(bad)
        else:
            pre.fit(frame).transform(bad)


def test_empty_table():
    with pytest.raises(TransferKitInputError, match="empty"):
        TabularPreprocessor().fit(pd.DataFrame({"a": pd.Series([], dtype=float)}))


def test_array_input_path():
    X = np.array([[1.0, np.nan], [3.0, 4.0], [5.0, 8.0]])
    pre = TabularPreprocessor().fit(X)
    assert pre.n_features_in_ == 2 and not hasattr(pre, "feature_names_in_")
    Z = pre.transform(X)
    assert Z.shape == (3, 3) and pre.n_features_out_ == 3  # 2 values + 1 indicator
    c0 = X[:, 0]
    np.testing.assert_allclose(Z[:, 0], (c0 - c0.mean()) / c0.std())
    c1 = np.array([6.0, 4.0, 8.0])  # NaN -> median 6
    np.testing.assert_allclose(Z[:, 1], (c1 - c1.mean()) / c1.std())
    # a DataFrame of the same width is read positionally
    np.testing.assert_allclose(pre.transform(pd.DataFrame(X, columns=["p", "q"])), Z)
    with pytest.raises(TransferKitInputError, match="3 features.*fitted with 2"):
        pre.transform(np.ones((2, 3)))
    with pytest.raises(TransferKitInputError, match="infinite"):
        pre.transform(np.array([[np.inf, 1.0]]))


def test_unfitted_and_clone(frame):
    pre = TabularPreprocessor(max_categories=7)
    with pytest.raises(NotFittedError):
        pre.transform(frame)
    fitted = pre.fit(frame)
    copy = clone(fitted)
    assert copy.get_params() == {"max_categories": 7} and not hasattr(copy, "transformer_")
