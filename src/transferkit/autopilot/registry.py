"""The strategy registry: how a transfer method becomes available to the autopilot.

A :class:`Strategy` is a name, a family, a one-line description, a builder
that returns an unfitted estimator following the domain convention (fit on
``X`` and a tagged ``y``), and a predicate saying whether it applies to a
task.  Registering one makes the autopilot try it; the runner itself never
changes.

Example
-------
>>> from transferkit.autopilot.registry import Strategy, register_strategy, get_strategy
>>> from transferkit.baselines import Pooled
>>> s = Strategy("pooled_target_x5", "baseline", "Pooled, target rows weighted 5x",
...              lambda task, seed: Pooled(target_weight=5.0, random_state=seed))
>>> register_strategy(s)
>>> get_strategy("pooled_target_x5").family
'baseline'
>>> unregister_strategy("pooled_target_x5")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from transferkit.validation import TransferKitInputError

__all__ = [
    "TaskInfo",
    "Strategy",
    "register_strategy",
    "unregister_strategy",
    "get_strategy",
    "available_strategies",
    "TARGET_ONLY",
]

TARGET_ONLY = "target_only"


@dataclass(frozen=True)
class TaskInfo:
    """What a strategy may need to know about the task before it is built."""

    task: str
    n_source: int
    n_source_domains: int
    n_labelled_target: int
    n_unlabelled_target: int
    n_features: int
    classes: tuple = ()
    modality: str = "tabular"
    #: The autopilot's primary metric and positive class: searches inside a strategy
    #: (``scoring=``, ``positive_label=``) choose by what the leaderboard ranks by.
    metric: str | None = None
    positive_label: object = None
    #: Whether raw inputs (texts, image paths) came with the features
    #: (``Autopilot.run(..., raw=...)``), and the backbone they were featurised
    #: with: what the strategies with ``inputs="raw"`` (fine-tuning) train on.
    raw_inputs: bool = False
    backbone: str | None = None
    #: Seconds one fit of a strategy may take (its per-strategy budget spread over
    #: its evaluation fits and the refit); None for no limit.
    fit_budget: float | None = None

    @property
    def has_target_labels(self) -> bool:
        return self.n_labelled_target > 0

    def search_scoring(self) -> dict:
        """``scoring`` and ``positive_label`` for a search inside a strategy (e.g.
        ``ImportanceWeighted(..., **task.search_scoring())``): the autopilot's metric
        and positive class; None (the searches' defaults) when not set."""
        return {"scoring": self.metric, "positive_label": self.positive_label}


def _always(task: TaskInfo) -> bool:
    return True


@dataclass(frozen=True)
class Strategy:
    """One transfer strategy the autopilot can try.

    Parameters
    ----------
    name : str
        Unique identifier (used in leaderboards and ``strategies=[...]``).
    family : str
        "baseline", "instance", "feature" or "model".
    description : str
        One line for the report.
    build : callable(TaskInfo, random_state) -> estimator
        Returns a fresh unfitted estimator whose ``fit`` takes a tagged ``y``.
    applies : callable(TaskInfo) -> bool
        Whether the strategy makes sense for this task.
    inputs : {"features", "raw"}, default="features"
        What its estimator is fitted on: the feature matrix ``X``, or the raw
        inputs (texts, image paths) passed as ``Autopilot.run(..., raw=...)``.
    """

    name: str
    family: str
    description: str
    build: Callable = field(repr=False)
    applies: Callable = field(default=_always, repr=False)
    inputs: str = "features"

    def __post_init__(self):
        if self.inputs not in ("features", "raw"):
            raise TransferKitInputError(
                f"Strategy {self.name!r}: inputs must be 'features' or 'raw', got "
                f"{self.inputs!r}.")


_REGISTRY: dict[str, Strategy] = {}


def register_strategy(strategy: Strategy, replace: bool = False) -> None:
    """Add ``strategy`` to the registry (``replace=True`` to overwrite a name)."""
    if not isinstance(strategy, Strategy):
        raise TransferKitInputError("register_strategy takes a transferkit Strategy.")
    if strategy.name in _REGISTRY and not replace:
        raise TransferKitInputError(
            f"A strategy named {strategy.name!r} is already registered; pass "
            "replace=True to overwrite it."
        )
    _REGISTRY[strategy.name] = strategy


def unregister_strategy(name: str) -> None:
    """Remove a strategy by name."""
    get_strategy(name)
    del _REGISTRY[name]


def get_strategy(name: str) -> Strategy:
    """Look a strategy up by name, with a clear error listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise TransferKitInputError(
            f"Unknown strategy {name!r}; registered strategies: {sorted(_REGISTRY)}."
        ) from None


def available_strategies(task: TaskInfo | None = None) -> list[Strategy]:
    """Registered strategies, in registration order, that apply to ``task``."""
    return [s for s in _REGISTRY.values() if task is None or s.applies(task)]
