"""Pretrained backbones (images, text) and the feature extractor.

Importing this package does not import torch; building a backbone does.
"""

from transferkit.backbones.base import Backbone, PretrainedConfig
from transferkit.backbones.extractor import FeatureExtractor
from transferkit.backbones.registry import (
    build_backbone,
    get_backbone_config,
    list_backbones,
    register_backbone,
)

__all__ = ["Backbone", "FeatureExtractor", "PretrainedConfig", "build_backbone", "get_backbone_config",
           "list_backbones", "register_backbone"]
