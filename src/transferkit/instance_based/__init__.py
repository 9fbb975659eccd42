"""Instance-based transfer: re-weight or select source rows."""

from transferkit.instance_based.density_ratio import KLIEP, ULSIF, RuLSIF
from transferkit.instance_based.discriminative import DiscriminativeWeights
from transferkit.instance_based.kmm import KMM
from transferkit.instance_based.neighbours import NearestNeighbourWeights
from transferkit.instance_based.selection import InstanceSelection
from transferkit.instance_based.tradaboost import (
    TrAdaBoostClassifier,
    TrAdaBoostR2,
    TwoStageTrAdaBoostR2,
)
from transferkit.instance_based.weighted import ImportanceWeighted

__all__ = [
    "DiscriminativeWeights",
    "ImportanceWeighted",
    "InstanceSelection",
    "KLIEP",
    "KMM",
    "NearestNeighbourWeights",
    "RuLSIF",
    "TrAdaBoostClassifier",
    "TrAdaBoostR2",
    "TwoStageTrAdaBoostR2",
    "ULSIF",
]
