"""Typed settings (issue 19): the task file, the Autopilot constructor and the CLI options
go through one schema; every wrong type, range, layout or duplicate is refused before any
work with a message that names the setting, the value and what is expected."""

import json
from typing import get_args

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transferkit.autopilot import Autopilot
from transferkit.autopilot.selection import SELECTION_RULES
from transferkit.cli import main
from transferkit.settings import AutopilotSettings, TaskFileSettings, validated
from transferkit.taskfile import load_task
from transferkit.validation import TransferKitInputError

from test_cli import write_tables

BASE = "sources: {bank: source.csv}\ntarget: target.csv\nlabel: Class\n"

# (task-file line, what the message must say): each was a traceback or a silent wrong
# answer before the schema.
BAD_TASK_LINES = {
    "alpha_word": ("alpha: high", "alpha: got 'high' (str); expected: a number between 0 and 1"),
    "seed_word": ("random_state: abc", "random_state: got 'abc' (str); expected: a whole number"),
    "seed_fraction": ("random_state: 1.5", "random_state: got 1.5 (float)"),
    "seed_negative": ("random_state: -1", "random_state: got -1 (int)"),
    "seed_huge": ("random_state: 1099511627776", "random_state: got 1099511627776 (int)"),
    "output_number": ("output: 123", "output: got 123 (int); expected: a folder name"),
    "output_null": ("output: null", "['output'] are empty (null)"),
    "name_number": ("name: 123", "name: got 123 (int); expected: non-empty text"),
    "metric_list": ("metric: [f1_pos]", "metric: got ['f1_pos'] (list)"),
    "positive_label_list": ("positive_label: [1]", "positive_label: got [1] (list)"),
    "drop_columns_mapping": ("drop_columns: {x0: 1}", "drop_columns: got {'x0': 1} (dict)"),
    "strategies_number": ("strategies: 5", "strategies: got 5 (int)"),
    "strategies_mapping": ("strategies: {pooled: 1}", "strategies: got {'pooled': 1} (dict)"),
    "strategies_empty": ("strategies: []", "strategies: got [] (list)"),
    "significance_word": ("require_significance: 'no'",
                          "require_significance: got 'no' (str); expected: true or false"),
    "significance_number": ("require_significance: 5", "require_significance: got 5 (int)"),
    "racing_word": ("racing: yes please", "racing: got 'yes please' (str)"),
    "backbone_number": ("backbone: 123", "backbone: got 123 (int)"),
    "backbone_on_tabular": ("backbone: mobilenet_v2",
                            "['backbone'] apply to text and image tasks"),
    "cache_dir_on_tabular": ("cache_dir: cache", "['cache_dir'] apply to text and image"),
    "domains_beside_sources": ("target_domains: [C]",
                               "['target_domains'] apply to the 'data' layout"),
    "source_domains_beside_sources": ("source_domains: [A, B]",
                                      "['source_domains'] apply to the 'data' layout"),
    "duplicate_key": ("label: Klass", "The setting 'label' is given twice (line 4)"),
    "unknown_key": ("lable: Class", "unknown setting 'lable'"),
    "n_splits_one": ("n_splits: 1", "n_splits: got 1 (int); expected: a whole number from 2"),
    "time_budget_negative": ("time_budget: -5", "time_budget: got -5 (int)"),
    "metric_unknown": ("metric: accuracy_pos", "metric: got 'accuracy_pos' (str)"),
    "task_unknown": ("task: clustering", "task: got 'clustering' (str)"),
    "target_domains_mapping": ("target_domains: {C: 1}",
                               "target_domains: got {'C': 1} (dict)"),
    "text_column_list": ("text_column: [a, b]", "text_column: got ['a', 'b'] (list)"),
    "image_column_number": ("image_column: 1.5", "image_column: got 1.5 (float)"),
    "cache_dir_number": ("cache_dir: 5", "cache_dir: got 5 (int)"),
    "n_repeats_zero": ("n_repeats: 0", "n_repeats: got 0 (int)"),
    "max_source_rows_word": ("max_source_rows: lots", "max_source_rows: got 'lots' (str)"),
    "label_list": ("label: [Class]", "label: got ['Class'] (list)"),
    "sources_number": ("sources: 5", "sources: got 5 (int)"),
}


@pytest.mark.parametrize("case", sorted(BAD_TASK_LINES))
def test_a_bad_task_file_setting_is_refused_by_name(case, tmp_path, capsys):
    write_tables(tmp_path)
    line, message = BAD_TASK_LINES[case]
    task_file = tmp_path / "task.yaml"
    key = line.split(":")[0]
    replaced = [ln for ln in BASE.splitlines() if not ln.startswith(key + ":")]
    text = (BASE + line if case == "duplicate_key" else "\n".join(replaced + [line])) + "\n"
    task_file.write_text(text)
    with pytest.raises(TransferKitInputError) as error:
        load_task(task_file)
    assert message in str(error.value)
    # the CLI: exit 2, one paragraph on stderr, no traceback, and --json gets a JSON error
    assert main(["run", str(task_file), "--quiet", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("transferkit: error:") and "Traceback" not in captured.err
    assert message in json.loads(captured.out)["error"]
    assert not (tmp_path / "transferkit-output").exists()


def test_a_dict_of_sources_keyed_1_and_text_1_is_refused(tmp_path):
    write_tables(tmp_path)
    task_file = tmp_path / "task.yaml"
    task_file.write_text("sources: {1: source.csv, '1': target.csv}\ntarget: target.csv\n"
                         "label: Class\n")
    with pytest.raises(TransferKitInputError, match="1 and '1' are the same name"):
        load_task(task_file)


def test_two_source_files_with_one_file_name_are_refused(tmp_path):
    write_tables(tmp_path)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "bank.csv").write_text((tmp_path / "source.csv").read_text())
    task_file = tmp_path / "task.yaml"
    task_file.write_text("sources: [a/bank.csv, b/bank.csv]\ntarget: target.csv\n"
                         "label: Class\n")
    with pytest.raises(TransferKitInputError, match=r"several are called \['bank'\]"):
        load_task(task_file)


def test_a_single_target_domain_is_wrapped_and_numbers_name_columns(tmp_path):
    frame = write_tables(tmp_path).parent / "source.csv"
    text = frame.read_text().replace("Class", "2019")
    rows = text.splitlines()
    header, body = rows[0] + ",state", [r + (",WY" if i % 3 else ",CA")
                                         for i, r in enumerate(rows[1:])]
    (tmp_path / "all.csv").write_text("\n".join([header, *body]) + "\n")
    (tmp_path / "one.yaml").write_text("data: all.csv\nlabel: 2019\ndomain_column: state\n"
                                       "target_domains: WY\n")
    spec = load_task(tmp_path / "one.yaml")
    assert spec.label == "2019"
    assert set(spec.y.loc[spec.y["domain"] == "target", "label"].dropna()) <= {"bad", "good"}
    assert (spec.y["domain"] == "target").sum() == sum(1 for r in body if r.endswith("WY"))


BAD_CONSTRUCTOR = {
    "alpha": "high", "random_state": "abc", "n_splits": 2.5, "n_repeats": 0,
    "require_significance": "no", "racing": 1, "strategies": "pooled",
    "positive_label": [1], "metric": ["f1_pos"], "n_jobs": 0, "selection": "vote",
    "n_boot": 10, "time_budget": "soon", "max_source_rows": -1, "task": "clustering",
    "modality": "audio", "preprocess": "yes", "shift_permutations": 0, "progress": None,
}


@pytest.mark.parametrize("name", sorted(BAD_CONSTRUCTOR))
def test_a_bad_autopilot_argument_is_refused_before_any_work(name):
    value = BAD_CONSTRUCTOR[name]
    with pytest.raises(TransferKitInputError) as error:
        Autopilot(**{name: value}).run(None, None)     # no data is even looked at
    assert f"{name}: got {value!r}" in str(error.value)


def test_numpy_scalars_are_taken_for_the_python_ones():
    settings_ = validated(AutopilotSettings, {"random_state": np.int64(7), "alpha": np.float32(0.1),
                                              "racing": np.bool_(True)})
    assert settings_.random_state == 7 and settings_.racing is True


def test_the_schema_knows_every_selection_rule_and_every_constructor_argument():
    import inspect

    assert set(get_args(AutopilotSettings.model_fields["selection"].annotation)) == set(
        SELECTION_RULES)
    assert set(inspect.signature(Autopilot).parameters) == set(AutopilotSettings.model_fields)


@pytest.mark.parametrize("argv, message", [
    (["--n-jobs", "0"], "n_jobs: got 0 (int)"),
    (["--time-budget", "a while"], "time_budget: got 'a while' (str)"),
])
def test_a_bad_run_option_is_refused_before_any_work(argv, message, tmp_path, capsys):
    task_file = write_tables(tmp_path)
    assert main(["run", str(task_file), "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, message", [
    (["--seed", "-1"], "seed: got -1 (int)"),
    (["--max-rows", "-5"], "max_rows: got -5 (int)"),
    (["--top", "-3"], "top: got -3 (int)"),
    (["--permutations", "0"], "permutations: got 0 (int)"),
])
def test_a_bad_shift_option_is_refused(argv, message, tmp_path, capsys):
    write_tables(tmp_path)
    code = main(["shift", str(tmp_path / "source.csv"), str(tmp_path / "target.csv"),
                 "--ignore", "Class", *argv])
    assert code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--n-repeats", "0"], "n_repeats: got 0 (int)"),
    (["--seed", "-1"], "random_state: got -1 (int)"),
    (["--metric", "accuracy_pos"], "metric: got 'accuracy_pos' (str)"),
    (["--n-labelled", "-5"], "n_labelled"),
    (["--n-jobs", "0"], "n_jobs: got 0 (int)"),
])
def test_a_bad_demo_option_is_refused_before_any_work(argv, message, tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path / "demo"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not (tmp_path / "demo").exists()


@pytest.mark.parametrize("clash", ["existing_file", "model_is_a_file", "results_is_a_folder"])
def test_run_refuses_an_output_that_cannot_take_the_run_before_any_work(clash, tmp_path,
                                                                        capsys):
    task_file = write_tables(tmp_path)
    out = tmp_path / "out"
    if clash == "existing_file":
        out.write_text("mine")
    else:
        out.mkdir()
        (out / "model").write_text("mine") if clash == "model_is_a_file" else (
            out / "results.json").mkdir()
    assert main(["run", str(task_file), "--quiet", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "is an existing file" in err or "transferkit did not write" in err
    assert "transferkit run:" not in err                      # refused before the run
    assert out.is_file() or (out / "model").is_file() or (out / "results.json").is_dir()


def _setting_values():
    return st.one_of(st.none(), st.booleans(), st.integers(-2**41, 2**41),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                     st.lists(st.integers(), max_size=2),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(AutopilotSettings.model_fields)),
                       _setting_values(), max_size=4))
def test_any_autopilot_settings_are_valid_or_one_clear_error(values):
    try:
        checked = validated(AutopilotSettings, values)
    except TransferKitInputError as exc:
        assert str(exc).startswith("Invalid setting")
        assert any(f"{name}: got" in str(exc) or "valid settings" in str(exc)
                   for name in values)
        return
    for name, value in values.items():   # what is accepted is kept as given
        kept = getattr(checked, name)
        assert kept == value or (isinstance(value, tuple) and list(value) == kept)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(TaskFileSettings.model_fields)),
                       _setting_values(), max_size=5))
def test_any_task_file_mapping_is_valid_or_one_clear_error(values):
    try:
        validated(TaskFileSettings, values).options()
    except TransferKitInputError as exc:
        assert str(exc).startswith("Invalid setting")


def test_n_jobs_none_means_one_worker_as_in_scikit_learn():
    from test_autopilot import make_task

    X, y = make_task(n_source=80, n_target=30)
    result = Autopilot(strategies=["pooled"], n_jobs=None, n_repeats=1, n_splits=3,
                       shift_permutations=20).run(X, y)
    assert result.recommended in {"pooled", "target_only"}
