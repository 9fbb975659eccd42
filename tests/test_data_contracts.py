"""Data contracts at the front door (issue 19): each case was silently wrong before."""

import numpy as np
import pandas as pd
import pytest

from transferkit.domains import read_domains, split_table, stack_domains
from transferkit.io import read_table
from transferkit.taskfile import load_task
from transferkit.validation import TransferKitInputError

from test_cli import write_tables


def _frame(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x0": rng.normal(size=n), "x1": rng.normal(size=n),
                         "y": rng.choice(["a", "b"], n)})


def test_duplicate_column_names_are_refused_by_stack_domains():
    source = pd.concat([_frame()[["x0", "x1"]], _frame()[["x0"]]], axis=1)
    target = source.copy() + 1.0
    with pytest.raises(TransferKitInputError, match=r"names columns more than once: \['x0'\]"):
        stack_domains(source, _frame()["y"], target, None)


def test_a_duplicated_csv_header_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x0,x0,y\n1,2,a\n3,4,b\n")
    with pytest.raises(TransferKitInputError, match=r"names columns more than once.*\['x0'\]"):
        read_table(path)


def test_a_missing_domain_value_is_refused():
    table = _frame().assign(state=["CA"] * 10 + ["WY"] * 9 + [None])
    with pytest.raises(TransferKitInputError, match=r"empty in 1 row\(s\) \(first rows: \[19\]"):
        split_table(table, "y", "state", "WY")


def test_a_source_domain_called_target_is_refused():
    table = _frame().assign(state=["target"] * 10 + ["WY"] * 10)
    with pytest.raises(TransferKitInputError, match="is called 'target'"):
        split_table(table, "y", "state", "WY")


def test_domain_values_1_and_text_1_are_not_merged():
    table = _frame().assign(state=[1] * 7 + ["1"] * 7 + ["WY"] * 6)
    with pytest.raises(TransferKitInputError, match=r"read the same as text \(\['1'\]"):
        split_table(table, "y", "state", "WY")


def test_dict_sources_keyed_1_and_text_1_do_not_collide():
    f = _frame()
    with pytest.raises(TransferKitInputError, match=r"names \['1'\] repeat"):
        stack_domains({1: f[["x0"]], "1": f[["x0"]] + 1}, {1: f["y"], "1": f["y"]},
                      f[["x0"]] + 2, None)


def test_a_stray_text_cell_in_a_numeric_column_is_named_with_its_row(tmp_path):
    table = _frame(40)
    table["x0"] = table["x0"].astype(object)
    table.loc[17, "x0"] = "12,5"
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    with pytest.raises(TransferKitInputError, match=r"'x0' .* but for 1 cell\(s\) \(rows \[17\]"):
        read_table(path)


def test_a_real_text_column_is_still_read_as_text(tmp_path):
    table = _frame(40).assign(grade=list("ABCD") * 10, code=[str(i) for i in range(38)]
                              + ["x", "y"])
    table.loc[:10, "code"] = [f"c{i}" for i in range(11)]       # 13 of 40 not numbers
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    read = read_table(path)
    assert not pd.api.types.is_numeric_dtype(read["grade"])
    assert not pd.api.types.is_numeric_dtype(read["code"])


def test_a_target_that_is_the_source_file_is_refused(tmp_path):
    write_tables(tmp_path)
    task = tmp_path / "task.yaml"
    task.write_text("sources: {bank: source.csv}\ntarget: source.csv\nlabel: Class\n")
    with pytest.raises(TransferKitInputError, match="same as the rows of source 'bank'"):
        load_task(task)


def test_a_target_with_the_same_rows_as_a_source_is_refused():
    f = _frame()
    with pytest.raises(TransferKitInputError, match="target would leak into the source"):
        stack_domains(f[["x0", "x1"]], f["y"], f[["x0", "x1"]].copy(), None)
    X, y = stack_domains(f[["x0", "x1"]], f["y"], f[["x0", "x1"]] + 1e-9, None)
    assert read_domains(y).is_target.sum() == len(f)


def test_empty_domain_names_are_refused():
    table = _frame().assign(state=["CA"] * 10 + ["WY"] * 8 + ["", "  "])
    with pytest.raises(TransferKitInputError, match=r"empty in 2 row\(s\) \(first rows: \[18, 19\]"):
        split_table(table, "y", "state", "WY")
    f = _frame()
    with pytest.raises(TransferKitInputError, match="empty name"):
        stack_domains({"": f[["x0"]]}, {"": f["y"]}, f[["x0"]] + 1, None)
