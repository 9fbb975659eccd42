"""Running the autopilot's (strategy, fold) jobs: round by round, raced, on a budget.

Round ``r`` is CV repeat ``r``: every strategy still in the running is fitted
on each fold of that repeat, the baseline first and then the cheapest
strategies (by their seconds per fold so far) first, through joblib with
``n_jobs`` workers, results taken as they finish.  Between rounds an optional
race (:func:`~transferkit.autopilot.selection.race_survivors`, successive
halving) drops the strategies out of contention.

The run is anytime: when the time left falls below what the choice and the
refit still need, or on Ctrl-C (``KeyboardInterrupt``), the jobs in flight are
cancelled and the evaluation ends with what is complete.  A strategy counts
only with whole repeats: one without a complete first repeat is skipped, one
stopped later keeps its complete repeats.  The baseline's first repeat always
completes (nothing can be compared without it); a Ctrl-C before that stops the
run.

Example
-------
>>> from transferkit.autopilot.budget import Clock
>>> def submit(name, fold):
...     return (pow, (fold, 2), {})
>>> done = run_rounds(["target_only", "pooled"], "target_only", 2, 2, submit,
...                   Clock(), n_jobs=1)
>>> done.repeats, done.outputs[("pooled", 3)]
({'target_only': 2, 'pooled': 2}, 9)
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from joblib import Parallel, delayed

from transferkit.autopilot.budget import Clock

__all__ = ["Evaluation", "run_rounds", "COMPLETE"]

COMPLETE = "complete"
#: Seconds kept for the choice (bootstrap) besides the refit, when the budget is checked.
SELECTION_SECONDS = 2.0
#: How many of the most expensive strategies' fold fits the refit reserve counts.
REFIT_FITS = 3


@dataclass
class Evaluation:
    """What :func:`run_rounds` did.

    ``outputs`` and ``seconds`` map (strategy, fold) to the job's output and
    wall seconds; ``repeats`` counts each strategy's complete rounds;
    ``status`` says per strategy why it has fewer (raced out, stopped,
    skipped, failed); ``failed`` holds each failed strategy's first error;
    ``race_steps`` the rounds after which the race cut; ``stopped`` why the
    evaluation ended early ("time budget", "interrupted") or None.
    """

    outputs: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    repeats: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)
    failed: dict = field(default_factory=dict)
    race_steps: tuple = ()
    stopped: str | None = None


def _timed(key, func, args, kwargs):
    """Run one job; return its key, its output (or the exception) and its seconds."""
    start = time.perf_counter()
    try:
        output = func(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - reported per strategy in the result
        output = exc
    return key, output, time.perf_counter() - start


def _cost(done: Evaluation, name: str) -> float:
    spent = [s for (n, _), s in done.seconds.items() if n == name]
    return float(np.mean(spent)) if spent else 0.0


def _reserve(done: Evaluation, alive) -> float:
    """Seconds the choice and the refit still need: the selection plus the fold fits of
    the :data:`REFIT_FITS` most expensive strategies alive."""
    costs = sorted((_cost(done, n) for n in alive), reverse=True)
    return SELECTION_SECONDS + float(sum(costs[:REFIT_FITS]))


def run_rounds(names, baseline, n_rounds, folds_per_round, submit, clock: Clock, race=None,
               n_jobs=1, progress=False) -> Evaluation:
    """Evaluate strategies ``names`` on ``n_rounds`` x ``folds_per_round`` folds.

    ``submit(name, fold)`` gives the job ``(func, args, kwargs)``;
    ``race(alive, done, rounds)`` (optional) returns the names that go on after
    ``rounds`` complete rounds.  See the module docstring.
    """
    done = Evaluation(repeats={n: 0 for n in names}, status={n: COMPLETE for n in names})
    alive = list(names)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(alive) * folds_per_round * n_rounds, desc="evaluating strategies",
                   unit="fit", disable=None)
    steps = []
    try:
        for r in range(n_rounds):
            folds = range(r * folds_per_round, (r + 1) * folds_per_round)
            order = [baseline] + sorted((n for n in alive if n != baseline),
                                        key=lambda n: _cost(done, n))
            if _round(done, order, folds, baseline, submit, clock, n_jobs, bar, r):
                break
            alive = [n for n in order if n not in done.failed]
            if race is not None and r < n_rounds - 1:
                survivors = set(race(alive, done, r + 1)) | {baseline}
                for n in alive:
                    if n not in survivors:
                        done.status[n] = f"raced out after repeat {r + 1}"
                if bar is not None:
                    bar.total -= (len(alive) - len(survivors)) * folds_per_round * (
                        n_rounds - r - 1)
                    bar.refresh()
                alive = [n for n in alive if n in survivors]
                steps.append(r + 1)
    finally:
        if bar is not None:
            bar.close()
    done.race_steps = tuple(steps)
    if done.stopped is not None:
        why = "the time budget ran out" if done.stopped == "time budget" else "interrupted"
        for n in names:
            if n in done.failed or done.status[n] != COMPLETE:
                continue
            if done.repeats[n] == 0:
                done.status[n] = f"skipped: {why}"
            elif done.repeats[n] < n_rounds:
                done.status[n] = f"stopped after repeat {done.repeats[n]}: {why}"
    for n in done.failed:
        done.status[n] = "failed"
    return done


def _round(done: Evaluation, order, folds, baseline, submit, clock, n_jobs, bar, r) -> bool:
    """One round; True when the evaluation must stop (budget or Ctrl-C)."""
    jobs = [((n, f), *submit(n, f)) for n in order for f in folds]
    results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
        delayed(_timed)(key, func, args, kwargs) for key, func, args, kwargs in jobs)
    need = {(baseline, f) for f in folds} if r == 0 else set()
    try:
        for key, output, seconds in results:
            need.discard(key)
            done.seconds[key] = seconds
            if isinstance(output, Exception):
                done.failed.setdefault(key[0], f"{type(output).__name__}: {output}")
            else:
                done.outputs[key] = output
            if bar is not None:
                finished = sum(1 for (n, _) in done.seconds if n == key[0])
                bar.set_postfix_str(f"{key[0]} {finished} folds", refresh=False)
                bar.update(1)
            if not need and clock.left() < _reserve(done, order):
                done.stopped = "time budget"
                break
    except KeyboardInterrupt:
        if need:
            raise
        done.stopped = "interrupted"
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # joblib's note on the cancelled jobs
            results.close()
    for n in order:
        if n not in done.failed and all((n, f) in done.outputs for f in folds):
            done.repeats[n] = r + 1
    return done.stopped is not None
