"""Benchmark: hyper-parameters chosen by the target protocol, against the fixed defaults.

Run from the repository root::

    python benchmarks/bench_target_tuning.py            # about 9.5 minutes on 2 cores
    python benchmarks/bench_target_tuning.py --quick    # 5-fold x 1 (about 3.5 minutes)

The autopilot's instance-weighting strategies choose the flattening
exponent of their weights (``ImportanceWeighted(flattening="auto")``: 0, 0.5
or 1 by 3-fold target CV), instance selection chooses its rule for how many
source rows to keep (``n_keep`` in ("auto", 0.5, 1.0)) and subspace
alignment its share of target variance kept (``TargetGridSearch``: 0.9, 0.7
or 0.99).  This script measures each of them (suffix ``[fixed]``: the
same strategy with its fixed default: flattening 1, the full weights;
``n_keep="auto"``; variance kept 0.9), and also TCA and JDA with their
dimension chosen the same way (suffix ``[tuned]``: 20, 5 or 50 components,
via ``TargetGridSearch``), which the autopilot does *not* do.  For the
boosting strategies it measures the number of rounds: TrAdaBoost
(classification, 10 rounds in the autopilot) against 5, 20 and 40 rounds
and against the rounds chosen from (10, 5, 20, 40) by target CV
(``[tuned]``); TrAdaBoost.R2 (regression, 40 rounds in the autopilot)
against 5, 10 and 20 rounds and the same search.

Protocol: :class:`~transferkit.autopilot.Autopilot` with its defaults
(5-fold x 3 repeated target cross-validation, seed 0) on two real tasks:

* ``lending_club``: the demo task (``lending_club_task``: 4,143 source loans,
  250 labelled target loans, 5.8% defaults), balanced accuracy;
* ``ames``: ``ames_task`` (source neighbourhoods with >= 150 sales, 100
  labelled target sales from the small ones), RMSE of log sale price.

Every variant of a dataset runs in one autopilot call, so all see the same
folds.  One record per variant (``name``: the strategy; ``variant``:
``autopilot``, ``fixed`` or ``tuned``; ``impl``; ``n``: rows; ``metric``):
the cross-validated mean of the primary metric (``cv_mean``) with its 95%
interval, ROC AUC (classification), ``seconds`` (mean fit seconds per fold),
``peak_mb`` (the process's peak resident memory after the dataset's run),
what was chosen over the folds (``chosen_on_target``), the score on the
held-out target rows of a fit on all labelled rows, and what that fit chose.
Results are printed and saved to ``benchmarks/results/bench_target_tuning.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

from sklearn.pipeline import Pipeline

from transferkit.autopilot import Autopilot, Strategy, get_strategy
from transferkit.baselines import Pooled
from transferkit.datasets import ames_task, lending_club_task
from transferkit.evaluation import TargetGridSearch, classification_metrics, regression_metrics
from transferkit.evaluation.tuning import chosen_params
from transferkit.feature_based import JDA, TCA, SubspaceAlignment
from transferkit.instance_based import InstanceSelection
from transferkit.preprocessing import TabularPreprocessor

RESULTS = Path(__file__).resolve().parent / "results" / "bench_target_tuning.json"
INSTANCE = ("kmm", "kliep", "ulsif", "rulsif", "nn_weights", "pooled_importance_weighted",
            "instance_selection")
KERNEL_DIMENSIONS = [20, 5, 50]
BOOSTING_ROUNDS = [10, 5, 20, 40]


def _fixed(name: str) -> Strategy:
    """The registered instance strategy with its fixed default: flattening 1 (the full
    weights) or, for instance selection, the rule ``n_keep="auto"`` alone."""
    registered = get_strategy(name)

    def build(task, seed):
        model = registered.build(task, seed)
        if isinstance(model, InstanceSelection):
            return model.set_params(n_keep="auto")
        return model.set_params(flattening=1.0)
    return Strategy(f"{name}[fixed]", registered.family, registered.description, build)


def _feature(name: str, adapter_factory, grid=None) -> Strategy:
    """``[adapter, Pooled]``, optionally wrapped in a target grid search."""
    def build(task, seed):
        pipeline = Pipeline([("adapt", adapter_factory(seed)),
                             ("model", Pooled(task=task.task, random_state=seed))])
        if grid is None:
            return pipeline
        return TargetGridSearch(pipeline, grid, task=task.task, random_state=seed)
    return Strategy(name, "feature", name, build)


def _rounds(name: str, rounds) -> Strategy:
    """The registered boosting strategy with ``rounds`` boosting rounds, or with its
    rounds searched by target CV when ``rounds`` is a list."""
    registered = get_strategy(name)

    def build(task, seed):
        model = registered.build(task, seed)
        if isinstance(rounds, list):
            return TargetGridSearch(model, {"n_estimators": rounds}, task=task.task,
                                    random_state=seed)
        return model.set_params(n_estimators=rounds)
    suffix = "tuned" if isinstance(rounds, list) else str(rounds)
    return Strategy(f"{name}[{suffix}]", registered.family, registered.description, build)


def _variants(classification: bool) -> list:
    variants = []
    for name in INSTANCE:
        variants += [get_strategy(name), _fixed(name)]
    variants += [get_strategy("subspace_alignment"),
                 _feature("subspace_alignment[fixed]", lambda seed: SubspaceAlignment())]
    variants += [get_strategy("tca"),
                 _feature("tca[tuned]", lambda seed: TCA(random_state=seed),
                          {"adapt__n_components": KERNEL_DIMENSIONS})]
    if classification:
        variants += [get_strategy("jda"),
                     _feature("jda[tuned]", lambda seed: JDA(random_state=seed),
                              {"adapt__n_components": KERNEL_DIMENSIONS})]
    boosting = "tradaboost" if classification else "tradaboost_r2"
    default = get_strategy(boosting).build(None, 0).n_estimators
    variants += [get_strategy(boosting), _rounds(boosting, BOOSTING_ROUNDS)]
    variants += [_rounds(boosting, n) for n in BOOSTING_ROUNDS if n != default]
    return variants


def _holdout(model, task, classification: bool) -> dict:
    predicted = model.predict(task.X_holdout)
    if classification:
        proba = model.predict_proba(task.X_holdout)[:, list(model.classes_).index(
            task.positive_label)]
        scores = classification_metrics(task.y_holdout, predicted, y_score=proba,
                                        positive_label=task.positive_label)
        return {k: scores[k] for k in ("balanced_accuracy", "roc_auc")}
    return {"rmse": regression_metrics(task.y_holdout, predicted)["rmse"]}


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fit_on_all_rows(strategy: Strategy, result, task) -> Pipeline:
    """The strategy as the autopilot builds it, fitted on every row of ``task``."""
    return Pipeline([("preprocess", TabularPreprocessor()),
                     ("strategy", strategy.build(result.task, 0))]).fit(task.X, task.y)


def board_fields(board, name: str, metric: str) -> dict:
    """A strategy's cross-validated figures from the leaderboard (indexed by strategy)."""
    entry = board.loc[name]
    return {"cv_mean": float(entry[f"{metric}_mean"]),
            "cv_ci": [float(entry[f"{metric}_ci_low"]), float(entry[f"{metric}_ci_high"])],
            "seconds": float(entry["fit_seconds"]),
            "chosen_on_target": entry["chosen_on_target"]}


def plain(chosen: dict) -> dict:
    """``chosen_params`` with numpy scalars as Python numbers (for JSON)."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in chosen.items()}


def report_header(script: str, quick: bool, n_repeats: int) -> dict:
    """The fields every record list of these autopilot benchmarks is saved with."""
    return {"script": script + (" --quick" if quick else ""),
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "cpus": os.cpu_count(), "protocol": f"Autopilot, 5-fold x {n_repeats} target CV"}


def save_report(report: dict, path: Path) -> None:
    """Write ``report`` as JSON, atomically (a temporary file renamed over ``path``)."""
    path.parent.mkdir(exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(report, indent=2) + "\n")
    temporary.replace(path)
    print(f"\nsaved {path}")


def run(dataset: str, task, n_repeats: int) -> tuple[list, dict]:
    """One autopilot call over every variant; a record per variant, and a summary."""
    classification = task.positive_label is not None
    variants = _variants(classification)
    autopilot = Autopilot(strategies=variants, positive_label=task.positive_label,
                          n_repeats=n_repeats, random_state=0)
    start = time.perf_counter()
    result = autopilot.run(task.X, task.y)
    seconds = time.perf_counter() - start
    metric = result.metric
    board = result.leaderboard.set_index("strategy")
    records = []
    for strategy in variants:
        model = fit_on_all_rows(strategy, result, task)
        name, _, variant = strategy.name.partition("[")
        chosen = chosen_params(model)
        if isinstance(model.named_steps["strategy"], InstanceSelection):
            chosen["n_selected"] = model.named_steps["strategy"].n_selected_
        record = {
            "name": name, "variant": variant.rstrip("]") or "autopilot",
            "impl": "transferkit", "dataset": dataset, "n": len(task.X), "metric": metric,
            **board_fields(board, strategy.name, metric),
            "holdout": _holdout(model, task, classification),
            "chosen_on_all_rows": plain(chosen),
        }
        if classification:
            record["roc_auc_mean"] = float(board.loc[strategy.name, "roc_auc_mean"])
        records.append(record)
    for record in records:
        record["peak_mb"] = peak_mb()
    baseline = float(board.loc[result.baseline, f"{metric}_mean"])
    return records, {"dataset": dataset, "description": task.description, "metric": metric,
                     "baseline": {result.baseline: baseline}, "autopilot_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="5-fold x 1 target CV instead of 5-fold x 3 (about 3.5 minutes)")
    args = parser.parse_args()
    n_repeats = 1 if args.quick else 3
    report = report_header("benchmarks/bench_target_tuning.py", args.quick, n_repeats) | {
        "datasets": [], "records": []}
    for dataset, make in (("lending_club", lending_club_task), ("ames", ames_task)):
        records, summary = run(dataset, make(), n_repeats)
        report["datasets"].append(summary)
        report["records"] += records
        print(f"\n{dataset} ({summary['metric']}; baseline {summary['baseline']}; "
              f"{summary['autopilot_seconds']:.0f} s)")
        for r in records:
            low, high = r["cv_ci"]
            label = r["name"] + ("" if r["variant"] == "autopilot" else f"[{r['variant']}]")
            print(f"  {label:<34} {r['cv_mean']:.4f} [{low:.3f}, {high:.3f}]"
                  f"  fit {r['seconds']:.2f} s  hold-out {r['holdout']}"
                  f"  chosen {r['chosen_on_all_rows']}  folds: {r['chosen_on_target']}")
    save_report(report, RESULTS)


if __name__ == "__main__":
    main()
