"""Autopilot registration of the instance-weighting and instance-selection methods.

Each strategy is importance-weighted training (source rows weighted by an
estimate of :math:`p_t(x)/p_s(x)`, labelled target rows weight 1) with a
different ratio estimator, or training on a selected subset of source rows.
None needs target labels (unlabelled target rows drive the weights), and all
work for classification and regression.  Where target labels exist, the
weighted strategies choose how far to trust the weights by the target
protocol: the flattening exponent :math:`\\lambda` of :math:`w^\\lambda`
(0 = plain pooling, 1 = the full ratio) by 3-fold cross-validation over the
labelled target rows (:class:`~transferkit.instance_based.ImportanceWeighted`,
``flattening="auto"``), scored by the autopilot's metric and positive class
(:meth:`TaskInfo.search_scoring`); with fewer than 10 labelled target rows the full
weights are used.  Instance selection chooses its rule for how many source
rows to keep the same way (:data:`SELECTION_RULES`).
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

#: Instance selection's candidate rules, the stated one first (it wins ties): source
#: rows with p_t >= p_s, the top half by weight, all of them.
SELECTION_RULES = ("auto", 0.5, 1.0)


def _weighted(weighter_factory):
    def build(task, seed):
        return ImportanceWeighted(task=task.task, weighter=weighter_factory(seed),
                                  random_state=seed, **task.search_scoring())
    return build


INSTANCE_STRATEGIES = (
    Strategy("kmm", "instance",
             "Pooled, source rows weighted by kernel mean matching (Huang et al. 2007), "
             "flattened by target CV.",
             _weighted(lambda seed: KMM(random_state=seed))),
    Strategy("kliep", "instance",
             "Pooled, source rows weighted by KLIEP density ratios (Sugiyama et al. 2008), "
             "flattened by target CV.",
             _weighted(lambda seed: KLIEP(random_state=seed))),
    Strategy("ulsif", "instance",
             "Pooled, source rows weighted by uLSIF density ratios (Kanamori et al. 2009), "
             "flattened by target CV.",
             _weighted(lambda seed: ULSIF(random_state=seed))),
    Strategy("rulsif", "instance",
             "Pooled, source rows weighted by RuLSIF relative ratios, alpha=0.1 "
             "(Yamada et al. 2013), flattened by target CV.",
             _weighted(lambda seed: RuLSIF(alpha=0.1, random_state=seed))),
    Strategy("nn_weights", "instance",
             "Pooled, source rows weighted by nearest-neighbour target counts (Loog 2012), "
             "flattened by target CV.",
             _weighted(lambda seed: NearestNeighbourWeights(random_state=seed))),
    Strategy("instance_selection", "instance",
             "Trained on the source rows where the domain classifier finds p_t >= p_s (or "
             "the top half, or all: by target CV), plus the labelled target rows.",
             lambda task, seed: InstanceSelection(n_keep=SELECTION_RULES, task=task.task,
                                                  random_state=seed, **task.search_scoring())),
)

for _strategy in INSTANCE_STRATEGIES:
    register_strategy(_strategy, replace=True)
