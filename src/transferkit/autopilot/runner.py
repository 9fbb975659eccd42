"""The autopilot: try every applicable strategy under one honest protocol.

Given stacked features ``X`` and a tagged ``y`` (see :mod:`transferkit.domains`)
:class:`Autopilot` does, in order:

1. checks the task (labels, classes, domains) and measures the shift between
   source and target (:func:`transferkit.autopilot.shift_summary.summarise_shift`);
2. evaluates every registered, applicable strategy on the *same* folds of
   the labelled target rows (repeated stratified k-fold; every source row is
   available to every training fold, no target test row is ever trained on),
   each inside a pipeline that fits the preprocessing on the fold's training
   rows only; (strategy, fold) jobs run through joblib with ``n_jobs``, so
   any joblib backend (loky, Dask, Ray) spreads them;
3. compares each strategy with the target-only baseline on the same folds
   with the corrected resampled t-test (Nadeau & Bengio 2003) and labels it
   "transfer helps", "no significant difference" or "negative transfer"; the
   leaderboard also counts, over the folds, the hyper-parameters each strategy
   chose on its training fold's labelled target rows (``chosen_on_target``,
   see :func:`~transferkit.evaluation.tuning.summarise_choices`);
4. recommends a model under the negative-transfer guard: a transfer strategy
   is recommended only if its mean score is at least the target-only mean and
   it is not flagged as negative transfer (with ``require_significance=True``
   only if it significantly beats target-only); otherwise target-only wins;
5. refits the recommended pipeline on all rows.

When the target has no labels the scores come from importance-weighted
validation on the source (Sugiyama et al. 2007), the baseline is
source-only, and the result is marked as weaker evidence.

Example
-------
>>> from transferkit.autopilot import Autopilot
>>> from transferkit.datasets import lending_club_task
>>> task = lending_club_task()                                    # doctest: +SKIP
>>> result = Autopilot(random_state=0).run(task.X, task.y)        # doctest: +SKIP
>>> result.recommended, result.verdict                            # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.pipeline import Pipeline

import transferkit.autopilot.builtin_strategies  # noqa: F401  (registers strategies)
from transferkit.autopilot.registry import (
    TARGET_ONLY,
    Strategy,
    TaskInfo,
    available_strategies,
    get_strategy,
)
from transferkit.autopilot.shift_summary import summarise_shift
from transferkit.domains import DomainInfo, infer_task, read_domains
from transferkit.evaluation import (
    SourceSplitter,
    TargetSplitter,
    default_positive_label,
    fit_and_score,
    get_metric,
    iwcv_fit_and_score,
    summarise_scores,
    transfer_verdict,
)
from transferkit.evaluation.tuning import summarise_choices
from transferkit.instance_based import DiscriminativeWeights
from transferkit.preprocessing import TabularPreprocessor
from transferkit.validation import TransferKitInputError, check_target_labels

__all__ = ["Autopilot", "AutopilotResult", "SOURCE_ONLY"]

SOURCE_ONLY = "source_only"
_CLASSIFICATION_REPORT = ("balanced_accuracy", "recall_pos", "f1_pos", "roc_auc", "accuracy",
                          "f1_macro", "precision_pos")
# Ranges the metrics cannot leave; the t-based interval is clipped to them.
_METRIC_RANGE = {"rmse": (0.0, np.inf), "mae": (0.0, np.inf), "r2": (-np.inf, 1.0)}
_REGRESSION_REPORT = ("rmse", "mae", "r2")
TARGET_EVIDENCE = "target cross-validation (labelled target rows)"


@dataclass
class AutopilotResult:
    """Everything the autopilot found; ``to_dict()`` gives a JSON-ready view."""

    task: TaskInfo
    metric: str
    greater_is_better: bool
    evidence: str
    baseline: str
    shift: dict
    feature_shift: pd.DataFrame | None
    fold_scores: pd.DataFrame
    leaderboard: pd.DataFrame
    recommended: str
    verdict: str
    model: Pipeline | None
    positive_label: object = None
    notes: list = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """A JSON-serialisable summary (no fitted model)."""
        def clean(value):
            if isinstance(value, dict):
                return {str(k): clean(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            if isinstance(value, (np.floating, float)):
                return None if not np.isfinite(value) else float(value)
            if isinstance(value, np.integer):
                return int(value)
            if isinstance(value, np.bool_):
                return bool(value)
            return value

        return clean({
            "task": vars(self.task) | {"classes": [str(c) for c in self.task.classes]},
            "metric": self.metric,
            "greater_is_better": self.greater_is_better,
            "evidence": self.evidence,
            "baseline": self.baseline,
            "positive_label": None if self.positive_label is None else str(self.positive_label),
            "shift": self.shift,
            "feature_shift": (None if self.feature_shift is None
                              else self.feature_shift.to_dict(orient="records")),
            "leaderboard": self.leaderboard.to_dict(orient="records"),
            "recommended": self.recommended,
            "verdict": self.verdict,
            "notes": list(self.notes),
            "seconds": self.seconds,
        })


class Autopilot:
    """Evaluate transfer strategies against target-only and recommend one.

    Parameters
    ----------
    strategies : list of str or Strategy, optional
        Default: every registered strategy that applies to the task.  The
        baseline (target-only, or source-only without target labels) is
        always added.
    metric : str, optional
        Primary metric; default ``balanced_accuracy`` (classification) or
        ``rmse`` (regression).  See :data:`transferkit.evaluation.METRICS`.
    task : {"auto", "classification", "regression"}
    positive_label : optional
        Positive class of a binary task (default: the minority class).
    n_splits, n_repeats : int
        Repeated k-fold over labelled target rows.
    alpha : float
        Significance level of the paired comparisons.
    require_significance : bool
        Recommend a transfer strategy only if it *significantly* beats the
        baseline.
    preprocess : bool
        Put a :class:`~transferkit.preprocessing.TabularPreprocessor` before
        every strategy (needed for DataFrames with categorical columns).
    shift_permutations : int
        Permutations of the MMD test in the shift summary.
    n_jobs : int
        joblib workers for (strategy, fold) jobs.
    random_state : int
    progress : bool
        Show a progress bar on stderr.
    modality : {"tabular", "text", "image"}
        What the feature columns came from; ``X`` holds backbone features for
        text and image tasks (see :mod:`transferkit.featurize`), which makes
        the ``linear_probe`` strategy applicable.
    """

    def __init__(self, strategies=None, metric=None, task="auto", positive_label=None,
                 n_splits=5, n_repeats=3, alpha=0.05, require_significance=False,
                 preprocess=True, shift_permutations=500, n_jobs=1, random_state=0,
                 progress=False, modality="tabular"):
        self.strategies = strategies
        self.modality = modality
        self.metric = metric
        self.task = task
        self.positive_label = positive_label
        self.n_splits = n_splits
        self.n_repeats = n_repeats
        self.alpha = alpha
        self.require_significance = require_significance
        self.preprocess = preprocess
        self.shift_permutations = shift_permutations
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.progress = progress

    # ------------------------------------------------------------------ set-up
    def _task_info(self, X, info: DomainInfo) -> TaskInfo:
        if not info.labelled.any():
            raise TransferKitInputError(
                "No labelled rows in any domain: the autopilot needs labelled source rows."
            )
        task = self.task if self.task != "auto" else infer_task(info.labels_of(info.labelled))
        if task not in ("classification", "regression"):
            raise TransferKitInputError(
                f"task must be 'auto', 'classification' or 'regression', got {task!r}."
            )
        if not info.labelled_source.any():
            raise TransferKitInputError(
                "The source domain(s) have no labelled rows: nothing to transfer from."
            )
        check_target_labels(info.labels_of(info.labelled_source),
                            info.labels_of(info.labelled_target), task)
        classes = ()
        if task == "classification":
            classes = tuple(sorted(pd.unique(pd.Series(info.labels_of(info.labelled),
                                                        dtype=object)), key=str))
            if (self.positive_label is not None
                    and self.positive_label not in set(classes)):
                raise TransferKitInputError(
                    f"positive_label {self.positive_label!r} is not one of the classes "
                    f"{list(classes)}."
                )
        return TaskInfo(
            task=task,
            n_source=int(info.is_source.sum()),
            n_source_domains=len(info.source_domains),
            n_labelled_target=int(info.labelled_target.sum()),
            n_unlabelled_target=int((info.is_target & ~info.labelled).sum()),
            n_features=int(X.shape[1]),
            classes=classes,
            modality=self.modality,
        )

    def _strategies(self, task: TaskInfo, baseline: str) -> list[Strategy]:
        if self.strategies is None:
            chosen = available_strategies(task)
        else:
            chosen = [s if isinstance(s, Strategy) else get_strategy(s) for s in self.strategies]
            skipped = [s.name for s in chosen if not s.applies(task)]
            if skipped:
                raise TransferKitInputError(
                    f"Strategies {skipped} do not apply to this task (for example, they "
                    "need labelled target rows)."
                )
        names = [s.name for s in chosen]
        if len(set(names)) != len(names):
            raise TransferKitInputError(f"Strategy names repeat: {names}.")
        if baseline not in names:
            chosen = [get_strategy(baseline)] + chosen
        return chosen

    def _pipeline(self, strategy: Strategy, task: TaskInfo) -> Pipeline:
        steps = [("preprocess", TabularPreprocessor())] if self.preprocess else []
        steps.append(("strategy", strategy.build(task, self.random_state)))
        return Pipeline(steps)

    # --------------------------------------------------------------- running
    def _run_jobs(self, jobs, description: str) -> list:
        parallel = Parallel(n_jobs=self.n_jobs, return_as="generator")
        results = parallel(delayed(_guarded)(func, args, kwargs) for func, args, kwargs in jobs)
        if self.progress:
            from tqdm.auto import tqdm

            results = tqdm(results, total=len(jobs), desc=description, unit="fit",
                           disable=None)
        return list(results)

    def run(self, X, y) -> AutopilotResult:
        """Measure shift, evaluate strategies, apply the guard, refit the winner."""
        start = time.perf_counter()
        info = read_domains(y, n_rows=len(X))
        task = self._task_info(X, info)
        spec = get_metric(self.metric or ("balanced_accuracy" if task.task == "classification"
                                          else "rmse"), task.task)
        # the strategies' own searches choose by the same metric and positive class
        positive = self._positive(task, info)
        task = replace(task, metric=spec.name,
                       positive_label=self.positive_label if positive is None else positive)
        supervised = task.has_target_labels
        baseline = TARGET_ONLY if supervised else SOURCE_ONLY
        strategies = self._strategies(task, baseline)
        notes = []
        shift, feature_shift = summarise_shift(
            X, info, n_permutations=self.shift_permutations, random_state=self.random_state
        )

        if supervised:
            splitter = TargetSplitter(n_splits=self.n_splits, n_repeats=self.n_repeats,
                                      random_state=self.random_state)
            evidence = TARGET_EVIDENCE
            scorer_kwargs = {"task": task.task, "positive_label": self.positive_label}
            score = fit_and_score
        else:
            splitter = SourceSplitter(n_splits=self.n_splits, random_state=self.random_state)
            evidence = ("unsupervised: importance-weighted validation on source rows "
                        "(Sugiyama et al. 2007); the target has no labels, so this is "
                        "weaker evidence than target cross-validation")
            weights = DiscriminativeWeights(random_state=self.random_state).fit(
                TabularPreprocessor().fit_transform(X), y).weights_
            scorer_kwargs = {"task": task.task, "positive_label": self.positive_label,
                             "weights": weights}
            score = iwcv_fit_and_score
            notes.append("The target has no labels: scores are estimates from re-weighted "
                         "source rows, not measurements on the target.")
        splits = list(splitter.split(X, y))
        jobs = [(score, (self._pipeline(s, task), X, y, train, test), scorer_kwargs)
                for s in strategies for train, test in splits]
        outputs = self._run_jobs(jobs, "evaluating strategies")
        records, failed = [], {}
        for (strategy, (fold, _)), output in zip(
            [(s, f) for s in strategies for f in enumerate(splits)], outputs
        ):
            if isinstance(output, Exception):
                failed.setdefault(strategy.name, f"{type(output).__name__}: {output}")
                continue
            records.append({"strategy": strategy.name, "fold": fold} | output)
        if baseline in failed:
            raise TransferKitInputError(
                f"The {baseline} baseline failed, so nothing can be compared: {failed[baseline]}"
            )
        for name, message in failed.items():
            notes.append(f"Strategy {name!r} failed in at least one fold and was dropped: "
                         f"{message}")
        fold_scores = pd.DataFrame.from_records(records)
        fold_scores = fold_scores[~fold_scores["strategy"].isin(list(failed))]
        leaderboard = self._leaderboard(fold_scores, strategies, spec, baseline, task,
                                        "n_train_target" if supervised else "n_train")
        recommended, verdict = self._recommend(leaderboard, spec, baseline, supervised)
        best = next(s for s in strategies if s.name == recommended)
        model = self._pipeline(best, task).fit(X, y)
        return AutopilotResult(
            task=task, metric=spec.name, greater_is_better=spec.greater_is_better,
            evidence=evidence, baseline=baseline, shift=shift, feature_shift=feature_shift,
            fold_scores=fold_scores, leaderboard=leaderboard, recommended=recommended,
            verdict=verdict, model=model, positive_label=positive,
            notes=notes, seconds=time.perf_counter() - start,
        )

    def _positive(self, task: TaskInfo, info: DomainInfo):
        """The positive class of a binary task: ``positive_label``, else the minority
        class of the labelled target rows (of all labelled rows when the target has
        none), ties to the class that sorts last, as in ``fit_and_score``."""
        if task.task != "classification" or len(task.classes) != 2:
            return None
        if self.positive_label is not None:
            return self.positive_label
        target = info.labels_of(info.labelled_target)
        labels = target if len(target) else info.labels_of(info.labelled)
        return default_positive_label(labels)

    # ---------------------------------------------------------- summarising
    def _leaderboard(self, fold_scores, strategies, spec, baseline, task,
                     n_train_column) -> pd.DataFrame:
        metrics = _CLASSIFICATION_REPORT if task.task == "classification" else _REGRESSION_REPORT
        metrics = [spec.name] + [m for m in metrics if m != spec.name
                                 and m in fold_scores.columns]
        # The corrected t-test's n_train: labelled target training rows (target
        # protocol) or source training rows (importance-weighted validation).
        n_train = float(fold_scores[n_train_column].mean())
        n_test = float(fold_scores["n_test"].mean())
        base = fold_scores[fold_scores["strategy"] == baseline].sort_values("fold")
        rows = []
        family = {s.name: s.family for s in strategies}
        for name, group in fold_scores.groupby("strategy", sort=False):
            group = group.sort_values("fold")
            row = {"strategy": name, "family": family.get(name, "")}
            for metric in metrics:
                values = group[metric].to_numpy(dtype=float)
                if np.isfinite(values).sum() < 2:  # e.g. roc_auc without predict_proba
                    row.update({f"{metric}_mean": np.nan, f"{metric}_ci_low": np.nan,
                                f"{metric}_ci_high": np.nan})
                    continue
                summary = summarise_scores(values, n_train=n_train, n_test=n_test)
                row[f"{metric}_mean"] = summary.mean
                low, high = _METRIC_RANGE.get(metric, (0.0, 1.0))
                row[f"{metric}_ci_low"] = float(np.clip(summary.ci_low, low, high))
                row[f"{metric}_ci_high"] = float(np.clip(summary.ci_high, low, high))
            if name == baseline:
                row.update(verdict="baseline", p_value=np.nan, difference=0.0)
            else:
                v = transfer_verdict(group[spec.name].to_numpy(dtype=float),
                                     base[spec.name].to_numpy(dtype=float),
                                     n_train=n_train, n_test=n_test,
                                     greater_is_better=spec.greater_is_better, alpha=self.alpha)
                row.update(verdict=v.label, p_value=v.p_value, difference=v.mean_difference)
            row["fit_seconds"] = float(group["fit_seconds"].mean())
            row["chosen_on_target"] = (summarise_choices(group["chosen"].tolist())
                                       if "chosen" in group else "")
            rows.append(row)
        board = pd.DataFrame(rows)
        board = board.sort_values(f"{spec.name}_mean", ascending=not spec.greater_is_better,
                                  kind="stable").reset_index(drop=True)
        board.insert(0, "rank", np.arange(1, len(board) + 1))
        return board

    def _recommend(self, board, spec, baseline, supervised) -> tuple[str, str]:
        key = f"{spec.name}_mean"
        sign = 1.0 if spec.greater_is_better else -1.0
        base_score = float(board.loc[board["strategy"] == baseline, key].iloc[0])
        eligible = board[(board["strategy"] == baseline) | (
            (sign * (board[key] - base_score) >= 0)
            & (board["verdict"] != "negative transfer")
            & ((board["verdict"] == "transfer helps") | (not self.require_significance))
        )]
        eligible = eligible[np.isfinite(eligible[key])]
        best = eligible.sort_values(key, ascending=not spec.greater_is_better, kind="stable")
        # On a tie the baseline wins: no transfer without a gain.
        top_score = float(best[key].iloc[0])
        tied = best[np.isclose(best[key], top_score, rtol=0, atol=1e-12)]
        choice = baseline if baseline in set(tied["strategy"]) else str(best["strategy"].iloc[0])
        negative = board.loc[board["verdict"] == "negative transfer", "strategy"].tolist()
        neg_text = (f" Negative transfer (significantly worse than {baseline}): "
                    f"{', '.join(negative)}." if negative else "")
        caveat = "" if supervised else " (unsupervised estimate: weaker evidence)"
        if choice == baseline:
            verdict = (f"Transfer does not help{caveat}: no strategy beat {baseline} on "
                       f"{spec.name}; recommending {baseline}.{neg_text}")
            return choice, verdict
        row = board[board["strategy"] == choice].iloc[0]
        diff, p = float(row["difference"]), float(row["p_value"])
        if row["verdict"] == "transfer helps":
            verdict = (f"Transfer helps{caveat}: {choice} beats {baseline} on {spec.name} by "
                       f"{diff:.4f} (corrected paired t-test p={p:.3g}); recommending "
                       f"{choice}.{neg_text}")
        else:
            verdict = (f"No significant difference{caveat}: {choice} improves {spec.name} by "
                       f"{diff:.4f} over {baseline} on average, but p={p:.3g} >= "
                       f"{self.alpha}; recommending {choice} for its better mean, with that caveat "
                       f"(use require_significance=True to keep {baseline} in such "
                       f"cases).{neg_text}")
        return choice, verdict


def _guarded(func, args, kwargs):
    """Run one (strategy, fold) job; return the exception instead of raising.

    A strategy that fails is dropped from the leaderboard with its error in
    the result's notes, so one broken method cannot sink the whole run.
    """
    try:
        return func(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - reported per strategy in the result
        return exc
