"""Instance-based transfer: re-weight or select source rows."""

from transferkit.instance_based.discriminative import DiscriminativeWeights
from transferkit.instance_based.weighted import ImportanceWeighted

__all__ = ["DiscriminativeWeights", "ImportanceWeighted"]
