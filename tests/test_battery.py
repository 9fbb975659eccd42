"""The bad-input battery (issue 19): every public entry point crossed with families of bad
input; each case asserts a clear ``TransferKitInputError`` (API) naming the problem."""

import numpy as np
import pandas as pd
import pytest

from transferkit.domains import stack_domains
from transferkit.preprocessing import TabularPreprocessor
from transferkit.shift import (coral_distance, kernel_matrix, median_heuristic, mmd2, mmd_test,
                               proxy_a_distance)
from transferkit.validation import TransferKitInputError

from test_contract import CASES, make_data

RNG = np.random.default_rng(0)
GOOD_X, GOOD_Y = RNG.normal(size=(30, 3)), RNG.normal(size=(25, 3)) + 1.0


def _with(value):
    bad = GOOD_X.copy().astype(object)
    bad[4, 1] = value
    return bad


# family -> (X replacing the first sample, the message it must give)
SAMPLE_FAMILIES = {
    "nan_cell": (_with(np.nan).astype(float), "NaN"),
    "inf_cell": (_with(np.inf).astype(float), "(?i)inf"),
    "minus_inf_cell": (_with(-np.inf).astype(float), "(?i)inf"),
    "text_cell": (_with("abc"), "(?i)numeric|number"),
    "none_cell": (_with(None), "(?i)NaN|missing|numeric"),
    "empty": (np.zeros((0, 3)), "(?i)empty|0 rows|no rows"),
    "one_dimensional": (GOOD_X[:, 0], "(?i)2-D|2D|two-dimensional|shape"),
    "three_dimensional": (GOOD_X.reshape(30, 3, 1), "(?i)2-D|2D|shape"),
    "wrong_width": (GOOD_X[:, :2], "(?i)features|columns"),
    "no_columns": (np.zeros((30, 0)), "(?i)feature|column|empty"),
    "none": (None, "(?i)empty|None|no rows|2-D"),
    "ragged": ([[1.0, 2.0, 3.0], [1.0, 2.0]], "(?i)ragged|shape|same length|2-D"),
    "complex": (GOOD_X + 1j, "(?i)complex|numeric|real"),
    "text_table": (pd.DataFrame({"a": ["x"] * 30, "b": 1.0, "c": 2.0}), "(?i)numeric|number"),
}

SAMPLE_FUNCTIONS = {
    "mmd2": lambda X: mmd2(X, GOOD_Y),
    "mmd2_linear": lambda X: mmd2(X, GOOD_Y, kernel="linear"),
    "mmd2_linear_time": lambda X: mmd2(X, GOOD_Y, estimator="linear"),
    "mmd_test": lambda X: mmd_test(X, GOOD_Y, n_permutations=9, random_state=0),
    "mmd_test_second": lambda X: mmd_test(GOOD_Y, X, n_permutations=9, random_state=0),
    "coral_distance": lambda X: coral_distance(X, GOOD_Y),
    "proxy_a_distance": lambda X: proxy_a_distance(X, GOOD_Y, random_state=0),
    "median_heuristic": lambda X: median_heuristic(X, GOOD_Y),
    "kernel_matrix": lambda X: kernel_matrix(X, GOOD_Y),
}


@pytest.mark.parametrize("family", sorted(SAMPLE_FAMILIES))
@pytest.mark.parametrize("function", sorted(SAMPLE_FUNCTIONS))
def test_the_shift_functions_refuse_bad_samples(function, family):
    X, message = SAMPLE_FAMILIES[family]
    with pytest.raises(TransferKitInputError, match=message):
        SAMPLE_FUNCTIONS[function](X)


# family -> function(X, y) giving the bad (X, y) and the message the fit must give
FIT_FAMILIES = {
    "inf_cell": (lambda X, y: (_set(X, 3, 1, np.inf), y), "(?i)inf"),
    "rows_differ": (lambda X, y: (X[:-5], y), "(?i)rows|length|samples"),
    "one_dimensional": (lambda X, y: (X[:, 0], y), "(?i)2-D|2D|shape"),
    "three_dimensional": (lambda X, y: (X[:, :, None], y), "(?i)2-D|2D|shape"),
    "no_columns": (lambda X, y: (X[:, :0], y), "(?i)feature|column"),
    "untagged_list": (lambda X, y: (X, list(y["label"])), "stack_domains"),
    "y_missing_column": (lambda X, y: (X, y.drop(columns=["is_target"])), "(?i)is_target|column"),
    "no_source_labels": (lambda X, y: (X, _unlabel_source(y)), "(?i)source|label"),
    "text_cells": (lambda X, y: (_set(X.astype(object), 2, 0, "abc"), y), "(?i)numeric|number"),
    "complex": (lambda X, y: (X + 1j, y), "(?i)complex|numeric|real"),
}


def _set(X, i, j, value):
    X = X.copy()
    X[i, j] = value
    return X


def _unlabel_source(y):
    y = y.copy()
    y.loc[~y["is_target"].astype(bool), "label"] = np.nan
    return y


def _applies(family, name, kind):
    """Adapters and weighters use no labels; target-only uses no source labels."""
    if family == "no_source_labels":
        return kind == "predictor" and name != "target_only"
    return True


FIT_CASES = [(family, *case) for case in CASES for family in sorted(FIT_FAMILIES)
             if _applies(family, case[0], case[2])]


@pytest.mark.parametrize("family, name, factory, kind, task", FIT_CASES,
                         ids=[f"{c[1]}-{c[0]}" for c in FIT_CASES])
def test_every_estimator_refuses_bad_training_data(family, name, factory, kind, task):
    X, y = make_data(task)
    make_bad, message = FIT_FAMILIES[family]
    bad_X, bad_y = make_bad(X, y)
    with pytest.raises(TransferKitInputError, match=message):
        factory().fit(bad_X, bad_y)


@pytest.mark.parametrize("family", ["nan", "inf", "wrong_width", "one_dimensional", "text"])
@pytest.mark.parametrize("name, factory, kind, task",
                         [c for c in CASES if c[2] == "predictor"],
                         ids=[c[0] for c in CASES if c[2] == "predictor"])
def test_every_predictor_refuses_bad_rows_to_predict(name, factory, kind, task, family):
    X, y = make_data(task)
    model = factory().fit(X, y)
    rows = {"nan": _set(X[:5], 1, 1, np.nan), "inf": _set(X[:5], 1, 1, np.inf),
            "wrong_width": X[:5, :2], "one_dimensional": X[0],
            "text": _set(X[:5].astype(object), 1, 1, "abc")}[family]
    with pytest.raises((TransferKitInputError, ValueError)) as error:
        model.predict(rows)
    assert error.type is TransferKitInputError or "feature" in str(error.value)


@pytest.mark.parametrize("family, make, message", [
    ("duplicate_columns", lambda f: pd.concat([f, f[["a"]]], axis=1), "more than once"),
    ("infinite", lambda f: f.assign(a=np.inf), "(?i)infinite"),
    ("empty", lambda f: f.iloc[:0], "(?i)empty"),
])
def test_the_preprocessor_refuses_bad_tables(family, make, message):
    frame = pd.DataFrame({"a": RNG.normal(size=10), "b": list("xyxyxyxyxy")})
    with pytest.raises(TransferKitInputError, match=message):
        TabularPreprocessor().fit(make(frame))


@pytest.mark.parametrize("family, call, message", [
    ("no_target_rows", lambda: stack_domains(GOOD_X, np.zeros(30), GOOD_Y[:0], None), "empty"),
    ("no_source_rows", lambda: stack_domains(GOOD_X[:0], np.zeros(0), GOOD_Y, None), "empty"),
    ("labels_too_short", lambda: stack_domains(GOOD_X, np.zeros(29), GOOD_Y, None),
     "(?i)rows|length"),
    ("mixed_kinds", lambda: stack_domains(pd.DataFrame(GOOD_X), np.zeros(30), GOOD_Y, None),
     "(?i)mix"),
    ("widths_differ", lambda: stack_domains(GOOD_X, np.zeros(30), GOOD_Y[:, :2], None),
     "(?i)mismatched|features"),
    ("target_named_like_source", lambda: stack_domains({"target": GOOD_X},
                                                       {"target": np.zeros(30)}, GOOD_Y),
     "used both"),
])
def test_stack_domains_refuses_bad_domains(family, call, message):
    with pytest.raises(TransferKitInputError, match=message):
        call()


def _registered():
    from transferkit.autopilot import available_strategies
    from transferkit.autopilot.registry import TaskInfo

    task = TaskInfo(task="classification", n_source=120, n_source_domains=1,
                    n_labelled_target=30, n_unlabelled_target=30, n_features=4,
                    classes=(0, 1), modality="tabular")
    return task, available_strategies(task)


@pytest.mark.parametrize("family", ["inf_cell", "rows_differ", "untagged_list", "complex",
                                    "one_dimensional"])
@pytest.mark.parametrize("strategy", [s.name for s in _registered()[1]])
def test_every_registered_strategy_refuses_bad_training_data(strategy, family):
    task, strategies = _registered()
    model = next(s for s in strategies if s.name == strategy).build(task, 0)
    X, y = make_data("classification")
    make_bad, message = FIT_FAMILIES[family]
    bad_X, bad_y = make_bad(X, y)
    with pytest.raises(TransferKitInputError, match=message):
        model.fit(bad_X, bad_y)
