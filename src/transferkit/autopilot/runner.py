"""The autopilot: try every applicable strategy under one honest protocol.

Given stacked features ``X`` and a tagged ``y`` (see :mod:`transferkit.domains`)
:class:`Autopilot` does, in order:

1. checks the task (labels, classes, domains) and measures the shift between
   source and target (:func:`transferkit.autopilot.shift_summary.summarise_shift`);
2. evaluates every registered, applicable strategy on the *same* folds of
   the labelled target rows (repeated stratified k-fold; every source row is
   available to every training fold, no target test row is ever trained on),
   each behind the preprocessing fitted on the fold's training rows only
   (once per fold, shared by every strategy of the fold:
   :mod:`transferkit.autopilot.fold_cache`).  The (strategy, fold) jobs run repeat by repeat, the baseline
   and then the cheapest strategies first, through joblib with ``n_jobs``
   (any joblib backend: loky, Dask, Ray), optionally raced between repeats
   (``racing=True``), and within ``time_budget``: when the budget would not
   leave enough for steps 4-5, or on Ctrl-C, the run goes on with what is
   complete (:mod:`transferkit.autopilot.schedule`).  ``timings`` records the
   seconds of every stage, strategy and fold;
3. compares each strategy with the target-only baseline on the same folds
   with the corrected resampled t-test (Nadeau & Bengio 2003) and labels it
   "transfer helps", "no significant difference" or "negative transfer"; the
   leaderboard also counts, over the folds, the hyper-parameters each strategy
   chose on its training fold's labelled target rows (``chosen_on_target``,
   see :func:`~transferkit.evaluation.tuning.summarise_choices`);
4. chooses what ships from the strategies' out-of-fold predictions on the
   labelled target rows (:mod:`transferkit.autopilot.selection`): by default
   Caruana et al.'s greedy ensemble selection (``selection="ensemble"``), or
   the best single strategy (``"best"``), and estimates that whole choice
   honestly with the bootstrap bias-corrected CV of Tsamardinos et al.
   (2018) (:func:`~transferkit.evaluation.bootstrap.bbc_estimate`): the
   naive best-of-K figure and the corrected one are both reported, and the
   guard replaces a choice that beat target-only in fewer than
   :data:`~transferkit.autopilot.selection.GUARD_PROBABILITY` of bootstrap
   resamples of the labelled rows by target-only, and is replayed inside the
   estimate, so the headline figure, its interval and the verdict describe
   the whole procedure (with ``require_significance=True`` target-only also
   ships when the gain interval reaches 0);
5. refits what ships on all rows: one pipeline, or a
   :class:`~transferkit.autopilot.ensemble.WeightedEnsemble` of pipelines.

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

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

import transferkit.autopilot.builtin_strategies  # noqa: F401  (registers strategies)
from transferkit.autopilot.registry import (
    TARGET_ONLY,
    Strategy,
    TaskInfo,
    available_strategies,
    get_strategy,
)
from transferkit.autopilot.budget import (
    DEFAULT_STRATEGY_TIME_BUDGET,
    DEFAULT_TIME_BUDGET,
    Clock,
    parse_duration,
)
from transferkit.autopilot.ensemble import WeightedEnsemble
from transferkit.autopilot.fold_cache import FoldPreprocessing
from transferkit.autopilot.schedule import COMPLETE, Evaluation, run_rounds
from transferkit.autopilot.selection import (
    GUARD_PROBABILITY,
    GUARD_RESAMPLES,
    choose,
    race_survivors,
)
from transferkit.autopilot.shift_summary import summarise_shift
from transferkit.autopilot.source_subsample import (
    DEFAULT_MAX_SOURCE_ROWS,
    check_max_source_rows,
    source_subsample,
)
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
from transferkit.evaluation.bootstrap import BBCEstimate, OutOfFold
from transferkit.evaluation.metrics import _sorted_classes
from transferkit.evaluation.tuning import summarise_choices
from transferkit.featurize import DEFAULT_BACKBONES
from transferkit.instance_based import DiscriminativeWeights
from transferkit.preprocessing import TabularPreprocessor
from transferkit.settings import AutopilotSettings, validated
from transferkit.validation import TransferKitInputError, check_target_labels

__all__ = ["Autopilot", "AutopilotResult", "SOURCE_ONLY", "ENSEMBLE"]

SOURCE_ONLY = "source_only"
#: ``recommended`` when the shipped model is an ensemble of strategies.
ENSEMBLE = "ensemble"
#: Per-fold outputs kept for the out-of-fold arrays, not for the fold-score table.
_PREDICTION_KEYS = ("test", "y_pred", "y_score", "proba")
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
    #: the bootstrap bias-corrected estimate of what ships (target labels only)
    estimate: BBCEstimate | None = None
    #: strategy name -> weight of what ships (one entry unless an ensemble)
    members: dict = field(default_factory=dict)
    out_of_fold: OutOfFold | None = field(default=None, repr=False)
    #: where the time went: seconds per stage and per strategy (see ``_timings``)
    timings: dict = field(default_factory=dict)

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
            "members": dict(self.members),
            "estimate": None if self.estimate is None else vars(self.estimate),
            "verdict": self.verdict,
            "notes": list(self.notes),
            "seconds": self.seconds,
            "timings": self.timings,
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
    n_jobs : int, default=-1
        joblib workers for (strategy, fold) jobs (-1: every core).
    selection : {"ensemble", "best"}
        How the shipped model is chosen from the strategies' out-of-fold
        predictions on the labelled target rows
        (:mod:`transferkit.autopilot.selection`): ``"ensemble"``, Caruana et
        al.'s greedy ensemble selection (a single strategy when no ensemble
        scores better), or ``"best"``, the best single strategy.
    n_boot : int
        Bootstrap samples of the bias-corrected estimate of the whole
        procedure (:func:`~transferkit.evaluation.bootstrap.bbc_estimate`).
    time_budget : float, str or None, default=600 s
        Seconds (or a duration such as ``"10m"``, see
        :func:`~transferkit.autopilot.budget.parse_duration`) the whole run may
        take; None for no limit.  The run is anytime: when the budget would
        not leave enough for the choice and the refit, or on Ctrl-C, the
        strategies still running are stopped and the choice is made among the
        complete ones; the notes and ``timings`` say what was cut.
    racing : bool, default=False
        Successive halving over the CV repeats
        (:func:`~transferkit.autopilot.selection.race_survivors`): after each
        repeat but the last, only the better half of the strategies goes on.
        Off by default: replayed on the runs of ``benchmarks/bench_autopilot.py``
        (6 tabular tasks x 10 draws) halving after repeats 1 and 2 ran 37% fewer
        fits but shipped up to 1.8 points less held-out balanced accuracy
        (mortgage_race), more than the 0.5 point a saving may cost.
    max_source_rows : int or None, default=20,000
        Above this many source rows the run (evaluation and refit) uses a
        stratified random subsample of that many
        (:func:`~transferkit.autopilot.source_subsample.source_subsample`: by
        source domain and class, every stratum kept); None uses every row.
        The notes and ``timings["source_rows"]`` say so.
    random_state : int
    progress : bool
        Show a progress bar on stderr (strategy, folds done, time left).
    modality : {"tabular", "text", "image"}
        What the feature columns came from; ``X`` holds backbone features for
        text and image tasks (see :mod:`transferkit.featurize`), which makes
        the ``linear_probe`` strategy applicable.
    backbone : str or None, default=None
        The backbone the features came from, which the fine-tuning strategies
        start from (None: the modality's default, see
        :data:`~transferkit.featurize.DEFAULT_BACKBONES`).
    strategy_time_budget : float, str or None, default=240 s
        Seconds one strategy that trains a network may spend, spread evenly over
        its evaluation fits and its refit; a fit that runs out stops cleanly
        with what it has learnt, and the leaderboard counts those folds
        (``budget_stops``).  None for no limit.

    ``run(X, y, raw=...)`` with the raw inputs (texts or image paths, one per
    row of ``X``) makes the strategies with ``inputs="raw"`` applicable: the
    fine-tuning ones (:mod:`transferkit.autopilot._register_deep`).  A shipped
    model with such a member then predicts with ``model.predict(X, raw=...)``.
    """

    def __init__(self, strategies=None, metric=None, task="auto", positive_label=None,
                 n_splits=5, n_repeats=3, alpha=0.05, require_significance=False,
                 preprocess=True, shift_permutations=500, n_jobs=-1, random_state=0,
                 progress=False, modality="tabular", selection="ensemble", n_boot=300,
                 time_budget=DEFAULT_TIME_BUDGET, racing=False,
                 max_source_rows=DEFAULT_MAX_SOURCE_ROWS, backbone=None,
                 strategy_time_budget=DEFAULT_STRATEGY_TIME_BUDGET):
        self.strategies = strategies
        self.backbone = backbone
        self.strategy_time_budget = strategy_time_budget
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
        self.selection = selection
        self.n_boot = n_boot
        self.time_budget = time_budget
        self.racing = racing
        self.max_source_rows = max_source_rows

    # ------------------------------------------------------------------ set-up
    def check_settings(self) -> None:
        """Every setting's type, range and allowed values
        (:class:`~transferkit.settings.AutopilotSettings`), before any work: one
        clear error naming each bad setting."""
        validated(AutopilotSettings, {name: getattr(self, name)
                                      for name in AutopilotSettings.model_fields},
                  where="Autopilot(...)")

    def _task_info(self, X, info: DomainInfo, raw=None) -> TaskInfo:
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
            raw_inputs=raw is not None,
            backbone=self.backbone or DEFAULT_BACKBONES.get(self.modality),
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

    def _pipeline(self, strategy: Strategy, task: TaskInfo, preprocess=None) -> Pipeline:
        preprocess = self.preprocess if preprocess is None else preprocess
        steps = [("preprocess", TabularPreprocessor())] if preprocess else []
        steps.append(("strategy", strategy.build(task, self.random_state)))
        return Pipeline(steps)

    # --------------------------------------------------------------- running
    def run(self, X, y, raw=None) -> AutopilotResult:
        """Measure shift, evaluate strategies, apply the guard, refit the winner.

        ``raw``: the raw inputs behind ``X`` (texts or image paths, one per row),
        for the strategies that train on them (see the class docstring).
        """
        self.check_settings()
        budget = parse_duration(self.time_budget)
        clock = Clock(budget)
        seconds = {}
        max_rows = check_max_source_rows(self.max_source_rows)
        info = read_domains(y, n_rows=len(X))
        raw = _check_raw(raw, len(X))
        task = self._task_info(X, info, raw)
        notes, source_rows = [], {"given": task.n_source, "used": task.n_source}
        if max_rows is not None and task.n_source > max_rows:
            rows = source_subsample(y, max_rows, self.random_state, task.task)
            X = X.iloc[rows].reset_index(drop=True) if hasattr(X, "iloc") else X[rows]
            y = y.iloc[rows].reset_index(drop=True)
            raw = None if raw is None else raw[rows]
            info = read_domains(y, n_rows=len(X))
            task = self._task_info(X, info, raw)
            source_rows["used"] = task.n_source
            notes.append(f"The source has {source_rows['given']} rows; this run used a "
                         f"stratified random subsample of {task.n_source} (by source domain "
                         f"and class) for evaluation and refit (max_source_rows="
                         f"{max_rows}; None uses every row).")
        spec = get_metric(self.metric or ("balanced_accuracy" if task.task == "classification"
                                          else "rmse"), task.task)
        # the strategies' own searches choose by the same metric and positive class
        positive = self._positive(task, info)
        task = replace(task, metric=spec.name,
                       positive_label=self.positive_label if positive is None else positive)
        supervised = task.has_target_labels
        baseline = TARGET_ONLY if supervised else SOURCE_ONLY
        strategies = self._strategies(task, baseline)
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
        strategy_budget = parse_duration(self.strategy_time_budget)
        task = replace(task, fit_budget=None if strategy_budget is None else
                       strategy_budget / (len(splits) + 1))
        if supervised:
            scorer_kwargs["return_predictions"] = True
        n_rounds = self.n_repeats if supervised else 1
        per_round = len(splits) // n_rounds
        # the preprocessing is fitted once per fold and shared by every strategy
        pipelines = {s.name: self._pipeline(s, task, preprocess=False) for s in strategies}
        preprocessed = (FoldPreprocessing(X, splits, keep=per_round) if self.preprocess
                        else lambda fold: X)
        on_raw = {s.name for s in strategies if s.inputs == "raw"}

        def fold_X(name, fold):
            return raw if name in on_raw else preprocessed(fold)
        seconds["shift"] = clock.elapsed()
        race = (self._race(strategies, splits, info, task, positive, spec, baseline, per_round)
                if self.racing and supervised else None)
        done = run_rounds(
            [s.name for s in strategies], baseline, n_rounds, per_round,
            lambda name, fold: (score, (pipelines[name], fold_X(name, fold), y,
                                        *splits[fold]), scorer_kwargs),
            clock, race=race, n_jobs=self.n_jobs, progress=self.progress)
        seconds["evaluation"] = clock.elapsed() - seconds["shift"]
        if baseline in done.failed:
            raise TransferKitInputError(
                f"The {baseline} baseline failed, so nothing can be compared: "
                f"{done.failed[baseline]}")
        notes.extend(_evaluation_notes(done, budget, clock))
        kept = [s for s in strategies if s.name not in done.failed and done.repeats[s.name]]
        records = [{"strategy": s.name, "fold": fold, "seconds": done.seconds[(s.name, fold)]}
                   | {k: v for k, v in done.outputs[(s.name, fold)].items()
                      if k not in _PREDICTION_KEYS}
                   for s in kept for fold in range(done.repeats[s.name] * per_round)]
        fold_scores = pd.DataFrame.from_records(records)
        leaderboard = self._leaderboard(fold_scores, strategies, spec, baseline, task,
                                        "n_train_target" if supervised else "n_train")
        estimate, members = None, {}
        if supervised:
            oof = _out_of_fold(kept, done, splits, info, task, positive, n_rounds, per_round)
            recommended, members, estimate, verdict = self._choose(
                oof, spec, baseline, leaderboard, notes, done.race_steps)
        else:
            recommended, verdict = self._recommend(leaderboard, spec, baseline, supervised)
            members = {recommended: 1.0}
        seconds["selection"] = clock.elapsed() - seconds["shift"] - seconds["evaluation"]
        model = self._refit(members, strategies, task, X, y, raw)
        seconds["refit"] = clock.elapsed() - sum(seconds.values())
        timings = _timings(seconds, done, strategies, per_round, budget) | {
            "source_rows": source_rows}
        return AutopilotResult(
            task=task, metric=spec.name, greater_is_better=spec.greater_is_better,
            evidence=evidence, baseline=baseline, shift=shift, feature_shift=feature_shift,
            fold_scores=fold_scores, leaderboard=leaderboard, recommended=recommended,
            verdict=verdict, model=model, positive_label=positive,
            notes=notes, seconds=clock.elapsed(), estimate=estimate,
            members=members, out_of_fold=oof if supervised else None, timings=timings,
        )

    def _refit(self, members: dict, strategies, task, X, y, raw=None):
        """The shipped model, refitted on all rows: one pipeline, or the ensemble (also
        for a single member that trains on the raw inputs: it takes ``raw=``)."""
        by_name = {s.name: s for s in strategies}
        inputs = [by_name[name].inputs for name in members]
        fitted = [self._pipeline(by_name[name], task, preprocess=None if kind == "features" else False).fit(
            raw if kind == "raw" else X, y) for name, kind in zip(members, inputs)]
        if len(fitted) == 1 and inputs == ["features"]:
            return fitted[0]
        classes = tuple(_sorted_classes(read_domains(y).labels_of(
            read_domains(y).labelled).tolist())) if task.task == "classification" else ()
        return WeightedEnsemble(fitted, list(members.values()), task.task, classes,
                                names=list(members), inputs=inputs)

    def _race(self, strategies, splits, info, task, positive, spec, baseline, per_round):
        """The race between rounds: the survivors of one successive-halving step."""
        by_name = {s.name: s for s in strategies}

        def race(alive, done, rounds):
            kept = [by_name[n] for n in alive]
            oof = _out_of_fold(kept, done, splits, info, task, positive, rounds, per_round)
            mask = race_survivors(oof, spec.name, spec.greater_is_better, baseline,
                                  np.ones((1, len(oof.y))), steps=(rounds,))[0]
            return [n for n, keep in zip(alive, mask) if keep]
        return race

    def _choose(self, oof, spec, baseline, board, notes, race_steps=()):
        """Run :func:`~transferkit.autopilot.selection.choose` and word its verdict."""
        choice = choose(oof, spec.name, spec.greater_is_better, baseline, self.selection,
                        n_boot=self.n_boot, confidence=1.0 - self.alpha,
                        require_significance=self.require_significance,
                        race_steps=race_steps, random_state=self.random_state)
        members, estimate = choice.rule_members, choice.estimate
        recommended = next(iter(members)) if len(members) == 1 else ENSEMBLE
        names = ", ".join(f"{n} x{w:g}" for n, w in members.items())
        shown = recommended if len(members) == 1 else f"an ensemble ({names})"
        negative = board.loc[board["verdict"] == "negative transfer", "strategy"].tolist()
        neg_text = (f" Negative transfer (significantly worse than {baseline} on its own "
                    f"folds): {', '.join(negative)}." if negative else "")
        if choice.guarded:
            estimate = choice.procedure  # the figures the guard judged
        interval = (f"{estimate.gain:+.4f} ({1 - self.alpha:.0%} interval "
                    f"[{estimate.gain_ci_low:+.4f}, {estimate.gain_ci_high:+.4f}])")
        honest = (f"bootstrap bias-corrected CV of the whole procedure, choosing among "
                  f"{len(oof.names)} strategies: {spec.name} {estimate.corrected:.4f}, "
                  f"naive best-of-{len(oof.names)} figure {estimate.naive:.4f}")
        significant = estimate.gain_ci_low > 0
        if choice.guarded:
            why = {"share": f"it beat {baseline} in only {choice.guard_share:.0%} of "
                            f"{GUARD_RESAMPLES} bootstrap resamples of the labelled target "
                            f"rows (the guard asks for {GUARD_PROBABILITY:.0%})",
                   "gain": "the corrected gain of choosing it is not positive",
                   "significance": "with require_significance=True its gain interval must "
                                   "lie above 0"}[choice.reason]
            notes.append(f"The rule chose {shown}, but {why}: the guard keeps {baseline}.")
            members, recommended = choice.members, baseline
            verdict = (f"Transfer does not help: the corrected gain over {baseline} of the "
                       f"whole procedure (choice, then guard) is {interval} ({honest}); "
                       f"recommending {baseline}.{neg_text}")
        elif recommended == baseline:
            verdict = (f"Transfer does not help: no strategy beat {baseline} on {spec.name}; "
                       f"recommending {baseline}.{neg_text}")
        elif significant:
            verdict = (f"Transfer helps: recommending {shown}; gain over {baseline} "
                       f"{interval} ({honest}).{neg_text}")
        else:
            verdict = (f"No significant difference: recommending {shown} for its better "
                       f"estimate, but its gain over {baseline} is {interval}, which includes "
                       f"0 ({honest}); use require_significance=True to keep {baseline} in "
                       f"such cases.{neg_text}")
        return recommended, members, choice.estimate, verdict

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
        base = fold_scores[fold_scores["strategy"] == baseline].set_index("fold")
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
                                     base.loc[group["fold"], spec.name].to_numpy(dtype=float),
                                     n_train=n_train, n_test=n_test,
                                     greater_is_better=spec.greater_is_better, alpha=self.alpha)
                row.update(verdict=v.label, p_value=v.p_value, difference=v.mean_difference)
            row["fit_seconds"] = float(group["fit_seconds"].mean())
            row["folds"] = int(len(group))
            row["seconds"] = float(group["seconds"].sum())
            row["chosen_on_target"] = (summarise_choices(group["chosen"].tolist())
                                       if "chosen" in group else "")
            row["budget_stops"] = (int((group["stopped"].fillna("") != "").sum())
                                   if "stopped" in group else 0)
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


def _check_raw(raw, n_rows: int):
    """``raw`` as an indexable array of one raw input per row (None stays None)."""
    if raw is None:
        return None
    if isinstance(raw, (str, bytes)) or not hasattr(raw, "__len__"):
        raise TransferKitInputError(
            "raw must be a list (or column) of raw inputs, one text or image path per row "
            "of X.")
    if isinstance(raw, np.ndarray) and raw.ndim > 1 and raw.dtype != object:
        values = raw                                  # decoded images (n, H, W[, C])
    else:
        values = np.empty(len(raw), dtype=object)
        values[:] = list(raw.to_numpy() if hasattr(raw, "to_numpy") else raw)
    if len(values) != n_rows:
        raise TransferKitInputError(
            f"raw has {len(values)} entries but X has {n_rows} rows; give one raw input "
            f"(text or image path) per row.")
    return values


def _out_of_fold(kept, done: Evaluation, splits, info: DomainInfo, task: TaskInfo, positive,
                 n_rounds: int, per_round: int) -> OutOfFold:
    """The out-of-fold outputs of the ``kept`` strategies over ``n_rounds`` CV repeats.

    Fold ``f`` belongs to repeat ``f // per_round``.  A strategy with fewer
    complete repeats (raced out, stopped by the budget) repeats its first one,
    whose predictions are out-of-fold for every row as well.
    """
    rows = np.flatnonzero(info.labelled_target)
    position = np.full(len(info.is_target), -1)
    position[rows] = np.arange(rows.size)
    classification = task.task == "classification"
    classes = tuple(_sorted_classes(info.labels_of(info.labelled).tolist())) \
        if classification else ()
    code = {c: k for k, c in enumerate(classes)}
    truth = info.labels_of(rows)
    y = (np.array([code[v] for v in truth.tolist()]) if classification
         else truth.astype(float))
    K, n, C = len(kept), rows.size, len(classes)
    pred = np.zeros((K, n_rounds, n), dtype=int if classification else float)
    proba = np.zeros((K, n_rounds, n, C)) if classification else None
    binary = classification and C == 2 and positive is not None
    score = np.zeros((K, n_rounds, n)) if binary else None
    for k, strategy in enumerate(kept):
        for r in range(n_rounds):
            source = r if r < done.repeats[strategy.name] else 0
            for fold in range(source * per_round, (source + 1) * per_round):
                output = done.outputs[(strategy.name, fold)]
                at = position[output["test"]]
                if not classification:
                    pred[k, r, at] = np.asarray(output["y_pred"], dtype=float)
                    continue
                codes = np.array([code[v] for v in np.asarray(output["y_pred"]).tolist()])
                pred[k, r, at] = codes
                proba[k, r, at] = (output["proba"] if output["proba"] is not None
                                   else np.eye(C)[codes])
                if binary:
                    scores = output["y_score"]
                    score[k, r, at] = (proba[k, r, at, code[positive]] if scores is None
                                       else np.asarray(scores, dtype=float))
    return OutOfFold(names=[s.name for s in kept], task=task.task, y=y, pred=pred,
                     proba=proba, score=score, classes=classes,
                     pos_code=code[positive] if binary else None, rows=rows)


def _evaluation_notes(done: Evaluation, time_budget, clock: Clock) -> list:
    """What the evaluation cut, and why, in words."""
    notes = [f"Strategy {name!r} failed in at least one fold and was dropped: {message}"
             for name, message in done.failed.items()]
    raced = [n for n, s in done.status.items() if s.startswith("raced out")]
    if raced:
        notes.append(f"Raced out (successive halving over the CV repeats; the honest estimate "
                     f"replays the race): {', '.join(raced)}.")
    if done.stopped is not None:
        why = (f"The time budget ({time_budget:g} s) left too little for the rest"
               if done.stopped == "time budget" else "The run was interrupted (Ctrl-C)")
        groups = {}
        for name, status in done.status.items():
            if status.startswith(("skipped", "stopped")):
                groups.setdefault(status.split(":")[0], []).append(name)
        cut = "; ".join(f"{what}: {', '.join(names)}" for what, names in groups.items())
        notes.append(f"{why} after {clock.elapsed():.1f} s: the choice is made among the "
                     f"strategies evaluated so far. Cut: {cut or 'nothing'}.")
    return notes


def _timings(seconds: dict, done: Evaluation, strategies, per_round: int, time_budget) -> dict:
    """Seconds per stage, and per strategy: folds run, seconds, seconds per fold, status."""
    rows = []
    for strategy in strategies:
        spent = [t for (n, _), t in done.seconds.items() if n == strategy.name]
        rows.append({"strategy": strategy.name, "folds": len(spent),
                     "seconds": float(sum(spent)),
                     "seconds_per_fold": float(np.mean(spent)) if spent else None,
                     "repeats_used": done.repeats.get(strategy.name, 0),
                     "status": done.status.get(strategy.name, COMPLETE)})
    rows.sort(key=lambda r: -r["seconds"])
    return {"stages": {k: float(v) for k, v in seconds.items()},
            "time_budget": time_budget,
            "stopped": done.stopped, "folds_per_repeat": per_round,
            "strategies": rows}
