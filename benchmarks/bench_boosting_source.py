"""Benchmark: continued boosting's default source model with and without early stopping.

Run from the repository root::

    python benchmarks/bench_boosting_source.py

scikit-learn's ``HistGradientBoosting*`` turns early stopping on only above
10,000 rows.  :class:`~transferkit.model_based.ContinuedBoostingClassifier`
builds its default source model with ``early_stopping=True``; this script
measures why, on the Lending Club demo task (``lending_club_task``: 4,143
source loans from five states, 889 target loans from 21 small states, 5.8%
defaults):

* ``source model``: the source model alone (balanced class weights, as in the
  autopilot), fitted on all source loans or on random subsets of 500, 1,000
  and 2,000 (5 draws each), scored on all 889 target loans;
* ``continued boosting``: the autopilot's entry (balanced class weights,
  the number of target trees by 3-fold target CV) fitted on the source and
  the 250 labelled target loans, scored on the 639 held-out target loans.

Scores: balanced accuracy and ROC AUC of the 'bad' class.  Results are
printed and saved to ``benchmarks/results/bench_boosting_source.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.utils.class_weight import compute_sample_weight

from transferkit.datasets import lending_club_task
from transferkit.domains import read_domains
from transferkit.model_based import ContinuedBoostingClassifier
from transferkit.preprocessing import TabularPreprocessor

RESULTS = Path(__file__).resolve().parent / "results" / "bench_boosting_source.json"
SUBSET_SIZES = (500, 1000, 2000)
N_DRAWS = 5


def _scores(model, X, y, positive) -> tuple[float, float]:
    column = list(model.classes_).index(positive)
    return (balanced_accuracy_score(y, model.predict(X)),
            roc_auc_score(y == positive, model.predict_proba(X)[:, column]))


def main() -> None:
    task = lending_club_task()
    info = read_domains(task.y, n_rows=len(task.X))
    pre = TabularPreprocessor().fit(task.X, task.y)
    Z = pre.transform(task.X)
    Z_holdout = pre.transform(task.X_holdout)
    y_holdout = np.asarray(task.y_holdout).astype(str)
    Zs = Z[info.labelled_source]
    ys = np.asarray(info.labels_of(info.labelled_source)).astype(str)
    Zt = Z[info.labelled_target]
    yt = np.asarray(info.labels_of(info.labelled_target)).astype(str)
    Z_all_target, y_all_target = np.vstack([Zt, Z_holdout]), np.concatenate([yt, y_holdout])
    positive = str(task.positive_label)
    records = []

    def record(**fields):
        records.append(fields)
        print("  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in fields.items()))

    for size in (len(ys),) + SUBSET_SIZES:
        for early in (False, True):
            draws = []
            for draw in range(1 if size == len(ys) else N_DRAWS):
                rows = (np.arange(len(ys)) if size == len(ys) else
                        np.random.default_rng(draw).choice(len(ys), size, replace=False))
                model = HistGradientBoostingClassifier(early_stopping=early, random_state=0)
                model.fit(Zs[rows], ys[rows],
                          sample_weight=compute_sample_weight("balanced", ys[rows]))
                draws.append(_scores(model, Z_all_target, y_all_target, positive))
            bal, auc = np.mean(draws, axis=0)
            record(part="source model", source_rows=size, draws=len(draws),
                   early_stopping=early, balanced_accuracy=float(bal), roc_auc=float(auc))
    X_fit = np.vstack([Zs, Zt])
    y_fit = np.concatenate([ys, yt])
    domains = np.r_[np.zeros(len(ys)), np.ones(len(yt))]
    for early in (False, True):
        model = ContinuedBoostingClassifier(
            HistGradientBoostingClassifier(early_stopping=early, random_state=0),
            n_target_trees=50, cv=3, class_weight="balanced", random_state=0)
        start = time.perf_counter()
        model.fit_domains(X_fit[domains == 0], y_fit[domains == 0],
                          X_fit[domains == 1], y_fit[domains == 1])
        seconds = time.perf_counter() - start
        bal, auc = _scores(model, Z_holdout, y_holdout, positive)
        record(part="continued boosting", source_rows=len(ys), draws=1, early_stopping=early,
               balanced_accuracy=float(bal), roc_auc=float(auc),
               target_trees=int(model.n_target_trees_), fit_seconds=seconds)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    partial = RESULTS.with_suffix(".json.partial")
    partial.write_text(json.dumps({"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   "records": records}, indent=2) + "\n")
    partial.replace(RESULTS)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
