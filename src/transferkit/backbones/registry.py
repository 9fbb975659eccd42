"""Backbone registry: a name maps to a config record and a builder.

Example
-------
>>> from transferkit.backbones.registry import list_backbones, get_backbone_config
>>> "mobilenet_v2" in list_backbones()
True
>>> get_backbone_config("mobilenet_v2").feature_dim
1280
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from transferkit.backbones.base import PretrainedConfig
from transferkit.validation import TransferKitInputError

__all__ = ["BackboneEntry", "register_backbone", "get_backbone_config", "build_backbone",
           "list_backbones"]


@dataclass(frozen=True)
class BackboneEntry:
    config: PretrainedConfig
    builder: Callable  # builder(**kwargs) -> Backbone


_REGISTRY: dict[str, BackboneEntry] = {}


def register_backbone(config: PretrainedConfig, builder: Callable, replace: bool = False):
    """Register ``builder`` (returning a Backbone) under ``config.name``."""
    if config.name in _REGISTRY and not replace:
        raise TransferKitInputError(f"Backbone {config.name!r} is already registered.")
    _REGISTRY[config.name] = BackboneEntry(config, builder)


def _entry(name: str) -> BackboneEntry:
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise TransferKitInputError(
            f"Unknown backbone {name!r}; registered: {sorted(_REGISTRY)}. Pass a Hugging Face "
            "model path/id with 'hf:<path-or-id>', or a torch.nn.Module."
        ) from None


def get_backbone_config(name: str) -> PretrainedConfig:
    return _entry(name).config


def build_backbone(name: str, **kwargs):
    """Build a registered backbone (imports torch)."""
    return _entry(name).builder(**kwargs)


def list_backbones() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def _load_builtins() -> None:
    # Built-in backbones register themselves in these modules; their module
    # level must not import torch (builders import it when called).
    from transferkit.backbones import builtin  # noqa: F401
