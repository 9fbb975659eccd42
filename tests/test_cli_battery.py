"""The command line under bad input (issue 19): every command crossed with bad paths and
files gives exit code 2 and a one-paragraph message, never a traceback; generated task
files and tables end in a valid result or such a message."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transferkit.cli import main

from test_cli import write_tables


def _paths(tmp_path):
    """A good task, model and data, and every family of bad path."""
    task_file = write_tables(tmp_path, n_source=120, n_target=40)
    assert main(["run", str(task_file), "--quiet"]) == 0
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "header_only.csv").write_text("income,grade,debt\n")
    (tmp_path / "garbage.csv").write_bytes(b"\x00\xff\xfe\x00garbage\n\x01,\x02\n\"")
    (tmp_path / "dupe.csv").write_text("income,income,debt\n1,2,3\n")
    (tmp_path / "table.xlsx").write_text("not really excel")
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "broken.yaml").write_text("sources: [unclosed\n")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "task.json").write_text("{}")
    pd.read_csv(tmp_path / "new.csv").rename(columns={"debt": "dept"}).to_csv(
        tmp_path / "renamed.csv", index=False)
    return {
        "missing": tmp_path / "nope.csv", "empty": tmp_path / "empty.csv",
        "header_only": tmp_path / "header_only.csv", "garbage": tmp_path / "garbage.csv",
        "duplicate_header": tmp_path / "dupe.csv", "unsupported": tmp_path / "table.xlsx",
        "directory": tmp_path / "folder.csv",
    }, {
        "missing": tmp_path / "nope.yaml", "unparsable": tmp_path / "broken.yaml",
        "not_a_mapping": tmp_path / "list.yaml", "wrong_suffix": tmp_path / "task.json",
        "directory": tmp_path / "folder.csv", "empty": tmp_path / "empty.csv",
    }, tmp_path / "out" / "model", tmp_path / "new.csv"


def _exit_2_cleanly(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.err.startswith("transferkit: error:")
    assert "Traceback" not in captured.err and captured.err.count("\n") <= 2
    return captured


DATA_FAMILIES = ["missing", "empty", "header_only", "garbage", "duplicate_header",
                 "unsupported", "directory"]
TASK_FAMILIES = ["missing", "unparsable", "not_a_mapping", "wrong_suffix", "directory", "empty"]


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return _paths(tmp_path_factory.mktemp("cli_battery"))


@pytest.mark.parametrize("family", DATA_FAMILIES)
@pytest.mark.parametrize("command", ["shift_a", "shift_b", "predict", "extract"])
def test_every_command_refuses_a_bad_data_file(command, family, paths, capsys, tmp_path):
    data, _, model, good = paths
    bad = data[family]
    argv = {"shift_a": ["shift", bad, good], "shift_b": ["shift", good, bad],
            "predict": ["predict", model, bad, "--output", tmp_path / "p.csv"],
            "extract": ["extract", bad, "--output", tmp_path / "f.parquet",
                        "--text-column", "income"]}[command]
    _exit_2_cleanly(argv, capsys)


@pytest.mark.parametrize("family", TASK_FAMILIES)
@pytest.mark.parametrize("json_flag", [False, True])
def test_run_refuses_a_bad_task_file(family, json_flag, paths, capsys):
    _, tasks, _, _ = paths
    captured = _exit_2_cleanly(["run", tasks[family], "--quiet"]
                               + (["--json"] if json_flag else []), capsys)
    if json_flag:
        assert json.loads(captured.out)["exit_code"] == 2


@pytest.mark.parametrize("bad_model", ["missing", "a_file", "empty_folder", "data_folder"])
def test_predict_refuses_what_is_not_a_model_folder(bad_model, paths, capsys, tmp_path):
    data, _, model, good = paths
    folder = {"missing": tmp_path / "none", "a_file": good, "empty_folder": tmp_path,
              "data_folder": good.parent}[bad_model]
    _exit_2_cleanly(["predict", folder, good, "--output", tmp_path / "p.csv"], capsys)


@pytest.mark.parametrize("argv, message", [
    (["extract", "{good}", "--output", "{tmp}/f.parquet", "--text-column", "grade",
      "--batch-size", "0"], "batch_size"),
    (["extract", "{good}", "--output", "{tmp}/f.xlsx", "--text-column", "grade"], ".xlsx"),
    (["extract", "{good}", "--output", "{tmp}/f.parquet", "--text-column", "nope"], "nope"),
    (["predict", "{model}", "{good}", "--output", "{tmp}/p.xlsx"], ".xlsx"),
    (["predict", "{model}", "{renamed}", "--output", "{tmp}/p.csv"], "columns"),
])
def test_bad_command_options_are_refused(argv, message, paths, capsys, tmp_path):
    data, _, model, good = paths
    values = {"good": good, "tmp": tmp_path, "model": model,
              "renamed": good.parent / "renamed.csv"}
    captured = _exit_2_cleanly([a.format(**values) for a in argv], capsys)
    assert message in captured.err


def test_extract_never_replaces_a_file_without_overwrite(paths, capsys, tmp_path):
    data, _, _, good = paths
    out = tmp_path / "mine.parquet"
    out.write_bytes(b"mine")
    captured = _exit_2_cleanly(["extract", good, "--output", out, "--text-column", "grade"],
                               capsys)
    assert "--overwrite" in captured.err and out.read_bytes() == b"mine"
    _exit_2_cleanly(["extract", good, "--output", good, "--text-column", "grade",
                     "--overwrite"], capsys)


def test_shift_finds_a_3_sd_shift_on_tiny_numbers(tmp_path, capsys):
    rng = np.random.default_rng(0)
    pd.DataFrame(rng.normal(size=(80, 2)) * 1e-300, columns=["a", "b"]).to_csv(
        tmp_path / "a.csv", index=False)
    pd.DataFrame((rng.normal(size=(80, 2)) + 3) * 1e-300, columns=["a", "b"]).to_csv(
        tmp_path / "b.csv", index=False)
    assert main(["shift", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"),
                 "--permutations", "99", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["mmd_p_value"] == 0.01 and payload["proxy_a_distance"] > 1.5


_CELLS = st.one_of(st.none(), st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from(["a", "b", "", "1", "x y"]), st.booleans())


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(source=st.lists(st.tuples(_CELLS, _CELLS, st.sampled_from(["good", "bad", None])),
                       min_size=0, max_size=30),
       target=st.lists(st.tuples(_CELLS, _CELLS, st.sampled_from(["good", "bad", None])),
                       min_size=0, max_size=12))
def test_any_generated_tables_run_or_fail_clearly(source, target, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("generated")
    for name, rows in (("s.csv", source), ("t.csv", target)):
        pd.DataFrame(rows, columns=["x0", "x1", "Class"]).to_csv(folder / name, index=False)
    (folder / "task.yaml").write_text("sources: [s.csv]\ntarget: t.csv\nlabel: Class\n"
                                      "strategies: [pooled]\nn_splits: 2\nn_repeats: 1\n")
    code = main(["run", str(folder / "task.yaml"), "--quiet", "--n-jobs", "1"])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    if code == 2:
        assert err.startswith("transferkit: error:") and "Traceback" not in err
    else:
        assert (folder / "transferkit-output" / "manifest.json").is_file()
