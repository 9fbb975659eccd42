"""Autopilot registration of the instance-weighting and instance-selection methods.

Each strategy is importance-weighted training (source rows weighted by an
estimate of :math:`p_t(x)/p_s(x)`, labelled target rows weight 1) with a
different ratio estimator, or training on a selected subset of source rows.
None needs target labels (unlabelled target rows drive the weights), and all
work for classification and regression.
"""

from __future__ import annotations

from transferkit.autopilot.registry import Strategy, register_strategy
from transferkit.instance_based import (
    KLIEP,
    KMM,
    ULSIF,
    ImportanceWeighted,
    InstanceSelection,
    NearestNeighbourWeights,
    RuLSIF,
)

__all__ = ["INSTANCE_STRATEGIES"]


def _weighted(weighter_factory):
    def build(task, seed):
        return ImportanceWeighted(task=task.task, weighter=weighter_factory(seed),
                                  random_state=seed)
    return build


INSTANCE_STRATEGIES = (
    Strategy("kmm", "instance",
             "Pooled, source rows weighted by kernel mean matching (Huang et al. 2007).",
             _weighted(lambda seed: KMM(random_state=seed))),
    Strategy("kliep", "instance",
             "Pooled, source rows weighted by KLIEP density ratios (Sugiyama et al. 2008).",
             _weighted(lambda seed: KLIEP(random_state=seed))),
    Strategy("ulsif", "instance",
             "Pooled, source rows weighted by uLSIF density ratios (Kanamori et al. 2009).",
             _weighted(lambda seed: ULSIF(random_state=seed))),
    Strategy("rulsif", "instance",
             "Pooled, source rows weighted by RuLSIF relative ratios, alpha=0.1 "
             "(Yamada et al. 2013).",
             _weighted(lambda seed: RuLSIF(alpha=0.1, random_state=seed))),
    Strategy("nn_weights", "instance",
             "Pooled, source rows weighted by nearest-neighbour target counts (Loog 2012).",
             _weighted(lambda seed: NearestNeighbourWeights(random_state=seed))),
    Strategy("instance_selection", "instance",
             "Trained on the source rows where the domain classifier finds p_t >= p_s, "
             "plus the labelled target rows.",
             lambda task, seed: InstanceSelection(task=task.task, random_state=seed)),
)

for _strategy in INSTANCE_STRATEGIES:
    register_strategy(_strategy, replace=True)
