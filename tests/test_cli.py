"""The command line: run/shift/predict round trips, exit codes, and the demo."""

import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from transferkit.autopilot import Autopilot
from transferkit.cli import main
from transferkit.taskfile import load_task


def write_tables(folder, seed=0, n_source=300, n_target=80):
    """A mixed-type credit-like task as two CSV files plus a task file."""
    rng = np.random.default_rng(seed)

    def table(n, shift):
        income = rng.lognormal(10 + shift, 0.5, n)
        grade = rng.choice(list("ABCD"), n, p=[.4 - shift / 4, .3, .2, .1 + shift / 4])
        debt = rng.normal(0.3 + shift / 5, 0.1, n)
        debt[rng.random(n) < 0.05] = np.nan
        score = -np.log(income) / 2 + 3 * np.nan_to_num(debt, nan=0.3) + (grade == "D")
        label = np.where(score + rng.normal(0, .3, n) > np.quantile(score, .7), "bad", "good")
        return pd.DataFrame({"income": income, "grade": grade, "debt": debt, "Class": label})

    table(n_source, 0.0).to_csv(folder / "source.csv", index=False)
    target = table(n_target, 0.4)
    target.to_csv(folder / "target.csv", index=False)
    new = table(40, 0.4).drop(columns="Class")
    new.to_csv(folder / "new.csv", index=False)
    (folder / "task.yaml").write_text(
        "sources: {bank: source.csv}\ntarget: target.csv\nlabel: Class\n"
        "positive_label: bad\nn_repeats: 1\noutput: out\n")
    return folder / "task.yaml"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "transferkit.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


def test_run_then_predict_in_a_fresh_process_matches_the_fitted_model(tmp_path, capsys):
    task_file = write_tables(tmp_path)
    assert main(["run", str(task_file), "--json", "--quiet"]) == 0
    payload = json.loads(capsys.readouterr().out)
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} >= {"results.json", "report.html", "model"}
    saved = json.loads((out / "results.json").read_text())
    assert saved["recommended"] == payload["recommended"]
    html = (out / "report.html").read_text()
    assert "<table>" in html and payload["verdict"].split(":")[0] in html

    # The same run in-process gives the model "before saving".
    spec = load_task(task_file)
    result = Autopilot(positive_label="bad", n_repeats=1, random_state=0).run(spec.X, spec.y)
    assert result.recommended == payload["recommended"]
    new = pd.read_csv(tmp_path / "new.csv")
    expected = result.model.predict(new)
    expected_proba = result.model.predict_proba(new)

    proc = run_cli("predict", out / "model", tmp_path / "new.csv", "--output",
                   tmp_path / "pred.csv")
    assert proc.returncode == 0, proc.stderr
    predicted = pd.read_csv(tmp_path / "pred.csv")
    assert list(predicted["prediction"]) == list(expected)
    classes = list(result.model.classes_)
    np.testing.assert_allclose(predicted[f"proba_{classes[0]}"], expected_proba[:, 0],
                               rtol=1e-12)

    # A library call in a fresh process agrees too.
    code = ("import pandas as pd, sys; from transferkit.persistence import load_model; "
            f"m = load_model(r'{out / 'model'}'); "
            f"print(','.join(map(str, m.predict(pd.read_csv(r'{tmp_path / 'new.csv'}')))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().split(",") == list(map(str, expected))


def test_predict_accepts_the_label_column_but_rejects_unknown_or_missing_columns(tmp_path):
    task_file = write_tables(tmp_path)
    assert main(["run", str(task_file), "--quiet"]) == 0
    model = tmp_path / "out" / "model"
    with_label = pd.read_csv(tmp_path / "target.csv")
    with_label.to_csv(tmp_path / "labelled.csv", index=False)
    assert main(["predict", str(model), str(tmp_path / "labelled.csv")]) == 0
    assert (tmp_path / "labelled.predictions.csv").exists()

    with_label.drop(columns=["debt"]).to_csv(tmp_path / "missing.csv", index=False)
    proc = run_cli("predict", model, tmp_path / "missing.csv")
    assert proc.returncode == 2 and "missing columns ['debt']" in proc.stderr
    with_label.assign(extra=1).to_csv(tmp_path / "extra.csv", index=False)
    proc = run_cli("predict", model, tmp_path / "extra.csv")
    assert proc.returncode == 2 and "unexpected columns ['extra']" in proc.stderr


def test_predict_never_overwrites_its_input(tmp_path, capsys):
    task_file = write_tables(tmp_path)
    assert main(["run", str(task_file), "--quiet"]) == 0
    before = (tmp_path / "new.csv").read_bytes()
    code = main(["predict", str(tmp_path / "out" / "model"), str(tmp_path / "new.csv"),
                 "--output", str(tmp_path / "new.csv")])
    assert code == 2
    assert "it is the data to read or a file the model was trained from" in capsys.readouterr().err
    assert (tmp_path / "new.csv").read_bytes() == before


def test_shift_command_json_and_text(tmp_path, capsys):
    write_tables(tmp_path)
    assert main(["shift", str(tmp_path / "source.csv"), str(tmp_path / "target.csv"),
                 "--ignore", "Class", "--permutations", "200", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["shift_detected"] is True and payload["mmd_p_value"] < 0.05
    assert {r["feature"] for r in payload["feature_shift"]} == {"income", "grade", "debt"}
    assert main(["shift", str(tmp_path / "source.csv"), str(tmp_path / "target.csv"),
                 "--ignore", "Class", "--permutations", "50"]) == 0
    assert "MMD^2" in capsys.readouterr().out


@pytest.mark.parametrize("case, message", [
    ("missing_task_file", "Task file not found"),
    ("unknown_label", "Unknown label column 'Klass'"),
    ("unreadable", "Cannot read"),
    ("mismatched", "Mismatched columns"),
    ("unknown_key", "unknown setting 'lable'"),
    ("single_class", "single class"),
    ("nan_label_only", "no labelled rows"),
    ("bad_budget", "time_budget: got 'ten minutes' (str); expected: a positive number of seconds"),
    ("bad_source_rows", "max_source_rows: got 'lots' (str); expected: a whole number of at least 1"),
])
def test_run_errors_exit_2_with_a_clear_message(tmp_path, capsys, case, message):
    task_file = write_tables(tmp_path)
    text = task_file.read_text()
    if case == "missing_task_file":
        task_file = tmp_path / "nope.yaml"
    elif case == "unknown_label":
        task_file.write_text(text.replace("label: Class", "label: Klass"))
    elif case == "unreadable":
        (tmp_path / "target.csv").write_bytes(b"\x00\xff\xfe garbage \x00\n\x01,\x02\n\"")
    elif case == "mismatched":
        pd.read_csv(tmp_path / "target.csv").rename(columns={"debt": "dept"}).to_csv(
            tmp_path / "target.csv", index=False)
    elif case == "unknown_key":
        task_file.write_text(text + "lable: x\n")
    elif case == "single_class":
        t = pd.read_csv(tmp_path / "target.csv").assign(Class="good")
        t.to_csv(tmp_path / "target.csv", index=False)
    elif case == "bad_budget":
        task_file.write_text(text + "time_budget: ten minutes\n")
    elif case == "bad_source_rows":
        task_file.write_text(text + "max_source_rows: lots\n")
    elif case == "nan_label_only":
        s = pd.read_csv(tmp_path / "source.csv").assign(Class=np.nan)
        s.to_csv(tmp_path / "source.csv", index=False)
    code = main(["run", str(task_file), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and err.startswith("transferkit: error:")


def test_usage_error_exit_code():
    proc = run_cli("frobnicate")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    # Its run time (under 2 minutes here) is a figure to report, not a unit
    # test assertion: CI machines are noisy.
    start = time.perf_counter()
    proc = run_cli("demo", "--output", tmp_path / "demo", "--json")
    print(f"transferkit demo took {time.perf_counter() - start:.1f} s")
    assert proc.returncode == 0, proc.stderr[-3000:]
    payload = json.loads(proc.stdout)
    names = {row["strategy"] for row in payload["leaderboard"]}
    assert {"target_only", "source_only", "pooled", "pooled_importance_weighted"} <= names
    row = payload["leaderboard"][0]
    for metric in ("balanced_accuracy", "recall_pos", "f1_pos", "roc_auc"):
        assert row[f"{metric}_ci_low"] <= row[f"{metric}_mean"] <= row[f"{metric}_ci_high"]
    assert payload["positive_label"] == "bad"
    assert payload["verdict"].split(":")[0] in {"Transfer helps", "No significant difference",
                                                "Transfer does not help"}
    assert payload["holdout"]["n_rows"] == 639
    # Human-readable summary went to stderr in --json mode; the files exist.
    assert "Leaderboard" in proc.stderr and "Verdict:" in proc.stderr
    assert (tmp_path / "demo" / "report.html").stat().st_size > 1000
    # what each strategy chose on the target, counted over the folds, is reported
    chosen = {row["strategy"]: row["chosen_on_target"] for row in payload["leaderboard"]}
    assert chosen["kmm"].startswith("flattening ") and chosen["kmm"].endswith("/10)")
    assert chosen["regularized_transfer"].startswith("lambda ")
    assert chosen["target_only"] == "" and chosen["tca"] == ""
    assert "Chosen on the labelled target rows" in proc.stderr
    assert "chosen on the target" in (tmp_path / "demo" / "report.html").read_text()
    # the honest estimate of the whole choice is printed, saved and in the report
    estimate = payload["estimate"]
    assert estimate["corrected_ci_low"] <= estimate["corrected"] <= estimate["corrected_ci_high"]
    assert estimate["gain_ci_low"] <= estimate["gain"] <= estimate["gain_ci_high"]
    assert sum(estimate["choice_frequency"].values()) == estimate["n_boot"]
    assert f"{estimate['corrected']:.3f}" in proc.stderr and "What you get" in proc.stderr
    assert f"naive out-of-fold figure of the choice {estimate['naive']:.3f}" in proc.stderr
    assert "What you get" in (tmp_path / "demo" / "report.html").read_text()
    assert set(payload["members"]) <= names | {"target_only"}
    # where the time went: every strategy's folds and seconds, printed and in the report
    timings = payload["timings"]
    assert timings["stopped"] is None and timings["time_budget"] == 600
    assert {r["strategy"] for r in timings["strategies"]} == names
    assert all(r["status"] == "complete" and r["folds"] == 10 for r in timings["strategies"])
    assert "Where the time went" in proc.stderr
    assert "Where the time went" in (tmp_path / "demo" / "report.html").read_text()

    # The saved demo model predicts the same in a fresh process as recorded.
    from transferkit.datasets import lending_club_task
    from transferkit.persistence import load_model

    task = lending_club_task()
    task.X_holdout.to_csv(tmp_path / "holdout.csv", index=False)
    proc = run_cli("predict", tmp_path / "demo" / "model", tmp_path / "holdout.csv",
                   "--output", tmp_path / "pred.csv")
    assert proc.returncode == 0, proc.stderr
    predicted = pd.read_csv(tmp_path / "pred.csv")["prediction"]
    model = load_model(tmp_path / "demo" / "model")
    assert list(predicted) == list(model.predict(task.X_holdout))
    recall = ((predicted == "bad") & (task.y_holdout == "bad")).sum() / (task.y_holdout == "bad").sum()
    assert recall == pytest.approx(payload["holdout"]["scores"][payload["recommended"]]["recall_pos"])


def test_time_budget_flag_is_kept_and_checked(tmp_path, capsys):
    task_file = write_tables(tmp_path)
    assert main(["run", str(task_file), "--quiet", "--json", "--time-budget", "3s"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["timings"]["time_budget"] == 3.0
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["timings"]["stages"].keys() == {"shift", "evaluation", "selection", "refit"}
    assert main(["run", str(task_file), "--quiet", "--time-budget", "soon"]) == 2
    assert "time_budget: got 'soon' (str); expected: a positive number" in capsys.readouterr().err
