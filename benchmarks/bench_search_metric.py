"""Benchmark: searches inside strategies scored by the autopilot's metric, or by a fixed one.

Run from the repository root::

    python benchmarks/bench_search_metric.py            # about 6 minutes on 2 cores
    python benchmarks/bench_search_metric.py --quick    # 5-fold x 1 (about 3 minutes)

Several strategies choose a hyper-parameter by cross-validation over the
labelled target rows (the flattening of the instance weights, instance
selection's rule, subspace alignment's share of variance kept).  The
autopilot passes them its own primary metric and positive class
(``TaskInfo.search_scoring``).  Before that they always chose by balanced
accuracy (classification) or RMSE (regression), whatever the leaderboard
ranked by.  This script measures both, in one autopilot call per case, so
both variants see the same folds:

* ``[by metric]`` (the autopilot's default): the search scores the
  autopilot's metric;
* ``[fixed criterion]``: the same strategy with its search forced to
  ``scoring="balanced_accuracy"`` (or ``"rmse"``): the earlier behaviour.

Cases (the tasks of ``bench_target_tuning``; the protocol of the demo,
5-fold x 2 repeated target CV, seed 0):

* ``lending_club`` with ``metric="roc_auc"`` and with ``metric="f1_pos"``
  (the positive class: a loan that defaulted, 5.8% of the target loans);
* ``ames`` with ``metric="mae"`` (mean absolute error of log sale price).

One record per strategy and variant (``name``, ``variant``, ``impl``,
``case``, ``n``: rows, ``metric``): the cross-validated mean of the metric
(``cv_mean``) with its 95% interval, ``seconds`` (mean fit seconds per
fold), ``peak_mb``, what was chosen over the folds (``chosen_on_target``),
the metric on the held-out target rows of a fit on all labelled rows, and
what that fit chose.  Printed, and saved to
``benchmarks/results/bench_search_metric.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench_target_tuning import (
    board_fields,
    fit_on_all_rows,
    peak_mb,
    plain,
    report_header,
    save_report,
)

from transferkit.autopilot import Autopilot, Strategy, get_strategy
from transferkit.datasets import ames_task, lending_club_task
from transferkit.evaluation import classification_metrics, regression_metrics
from transferkit.evaluation.tuning import chosen_params

RESULTS = Path(__file__).resolve().parent / "results" / "bench_search_metric.json"
#: The strategies whose fit searches on the labelled target rows.
SEARCHING = ("kmm", "kliep", "ulsif", "rulsif", "nn_weights", "pooled_importance_weighted",
             "instance_selection", "subspace_alignment")
CASES = (("lending_club", "roc_auc"), ("lending_club", "f1_pos"), ("ames", "mae"))


def _fixed_criterion(name: str, criterion: str) -> Strategy:
    """The registered strategy with its search scored by ``criterion`` whatever the metric."""
    registered = get_strategy(name)

    def build(task, seed):
        return registered.build(task, seed).set_params(scoring=criterion)
    return Strategy(f"{name}[fixed criterion]", registered.family, registered.description,
                    build)


def _holdout(model, task, metric: str) -> float:
    """``metric`` of ``model`` on the task's held-out target rows."""
    predicted = model.predict(task.X_holdout)
    if task.positive_label is None:
        return float(regression_metrics(task.y_holdout, predicted)[metric])
    proba = model.predict_proba(task.X_holdout)[:, list(model.classes_).index(
        task.positive_label)]
    return float(classification_metrics(task.y_holdout, predicted, y_score=proba,
                                        positive_label=task.positive_label)[metric])


def run(case: str, metric: str, task, n_repeats: int) -> tuple[list, dict]:
    """One autopilot call over both variants of every searching strategy."""
    criterion = "rmse" if task.positive_label is None else "balanced_accuracy"
    variants = []
    for name in SEARCHING:
        variants += [get_strategy(name), _fixed_criterion(name, criterion)]
    autopilot = Autopilot(strategies=variants, metric=metric,
                          positive_label=task.positive_label, n_repeats=n_repeats,
                          random_state=0)
    start = time.perf_counter()
    result = autopilot.run(task.X, task.y)
    seconds = time.perf_counter() - start
    board = result.leaderboard.set_index("strategy")
    records = []
    for strategy in variants:
        model = fit_on_all_rows(strategy, result, task)
        name, _, variant = strategy.name.partition("[")
        records.append({
            "name": name, "variant": variant.rstrip("]") or "by metric",
            "impl": "transferkit", "case": case, "n": len(task.X), "metric": metric,
            "search_scoring": model.named_steps["strategy"].scoring,
            **board_fields(board, strategy.name, metric),
            "holdout": _holdout(model, task, metric),
            "chosen_on_all_rows": plain(chosen_params(model)),
        })
    for record in records:
        record["peak_mb"] = peak_mb()
    baseline = float(board.loc[result.baseline, f"{metric}_mean"])
    return records, {"case": case, "metric": metric, "description": task.description,
                     "autopilot_seconds": seconds, "baseline": baseline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="5-fold x 1 target CV instead of 5-fold x 2")
    args = parser.parse_args()
    n_repeats = 1 if args.quick else 2
    report = report_header("benchmarks/bench_search_metric.py", args.quick, n_repeats) | {
        "cases": [], "records": []}
    tasks = {"lending_club": lending_club_task(), "ames": ames_task()}
    for case, metric in CASES:
        records, summary = run(case, metric, tasks[case], n_repeats)
        report["cases"].append(summary)
        report["records"] += records
        print(f"\n{case}, metric {metric} ({summary['autopilot_seconds']:.0f} s)")
        for r in records:
            low, high = r["cv_ci"]
            label = f"{r['name']} [{r['variant']}]"
            print(f"  {label:<48} {r['cv_mean']:.4f} [{low:.3f}, {high:.3f}]"
                  f"  fit {r['seconds']:.2f} s  hold-out {r['holdout']:.4f}"
                  f"  chosen {r['chosen_on_all_rows']}  folds: {r['chosen_on_target']}")
    save_report(report, RESULTS)


if __name__ == "__main__":
    main()
