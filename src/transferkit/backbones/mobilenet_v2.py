"""MobileNetV2 (Sandler et al., CVPR 2018), written for transferkit.

Architecture
------------
Input 3 x 224 x 224.  Building block: the *inverted residual* with a linear
bottleneck, for input width ``c_in``, expansion ``t``, output width ``c``,
stride ``s``:

    1x1 conv c_in -> t*c_in, BN, ReLU6          (omitted when t == 1)
    3x3 depthwise conv, stride s, BN, ReLU6
    1x1 conv t*c_in -> c, BN                    (linear: no activation)
    + input, when s == 1 and c_in == c          (residual)

with ``ReLU6(x) = min(max(x, 0), 6)``, convolutions without bias, and
BatchNorm (eps 1e-5) after each.  The network:

==========  ===  ====  ===  ===
stage        t    c     n    s
==========  ===  ====  ===  ===
conv 3x3     -    32    1    2
bottleneck   1    16    1    1
bottleneck   6    24    2    2
bottleneck   6    32    3    2
bottleneck   6    64    4    2
bottleneck   6    96    3    1
bottleneck   6    160   3    2
bottleneck   6    320   1    1
conv 1x1     -    1280  1    1
==========  ===  ====  ===  ===

(``n`` repeats; only the first of a stage has stride ``s``), then global
average pooling, dropout 0.2 and a linear classifier 1280 -> 1000.  Padding
is symmetric, ``k // 2``.  3.5M parameters.

Parameter names follow torchvision's ``mobilenet_v2`` state_dict
(``features.<i>...``, ``classifier.1``), so the published ImageNet checkpoint
``mobilenet_v2-b0353104.pth`` loads with ``strict=True``.

Features: :func:`build_mobilenet_v2` returns an
:class:`~transferkit.backbones.images.ImageBackbone` whose features are the
global average of the 1280-channel map after ``features.18`` (or of the
output of ``features.<layer>`` when ``layer`` is given).

Reference: M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen,
"MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018.

Example
-------
>>> from transferkit.backbones.mobilenet_v2 import build_mobilenet_v2
>>> import numpy as np
>>> backbone = build_mobilenet_v2(weights="none", device="cpu")
>>> backbone(np.zeros((2, 40, 60, 3), dtype=np.uint8)).shape  # doctest: +SKIP
(2, 1280)
"""

from __future__ import annotations

from torch import nn

from transferkit.backbones.images import ImageBackbone, load_weights
from transferkit.backbones.weights import resolve_weights
from transferkit.validation import TransferKitInputError

__all__ = ["MobileNetV2", "build_mobilenet_v2", "INVERTED_RESIDUAL_SETTINGS"]

# (expansion t, output channels c, repeats n, first stride s)
INVERTED_RESIDUAL_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class ConvBNReLU6(nn.Sequential):
    """conv (no bias) -> BatchNorm -> ReLU6; children named 0, 1, 2."""

    def __init__(self, c_in, c_out, kernel=3, stride=1, groups=1):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Inverted residual block with a linear bottleneck (see module docstring)."""

    def __init__(self, c_in, c_out, stride, expansion):
        super().__init__()
        hidden = c_in * expansion
        self.use_residual = stride == 1 and c_in == c_out
        layers = []
        if expansion != 1:
            layers.append(ConvBNReLU6(c_in, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, kernel=3, stride=stride, groups=hidden),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = c_out

    def forward(self, x):
        y = self.conv(x)
        return x + y if self.use_residual else y


class MobileNetV2(nn.Module):
    """MobileNetV2 (width multiplier 1.0) with torchvision-compatible names.

    ``forward(x)`` gives class logits; ``forward_features(x, layer)`` the
    feature map after ``features[layer]`` (default: the last, 1280 channels).
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        blocks = [ConvBNReLU6(3, 32, kernel=3, stride=2)]
        c_in = 32
        for t, c, n, s in INVERTED_RESIDUAL_SETTINGS:
            for i in range(n):
                blocks.append(InvertedResidual(c_in, c, s if i == 0 else 1, t))
                c_in = c
        blocks.append(ConvBNReLU6(c_in, 1280, kernel=1))
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))
        self._init_weights()

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    @property
    def num_layers(self) -> int:
        return len(self.features)

    def layer_channels(self, layer: int) -> int:
        block = self.features[layer]
        if isinstance(block, InvertedResidual):
            return block.out_channels
        return block[0].out_channels

    def forward_features(self, x, layer=None):
        if layer is None or layer == len(self.features) - 1:
            return self.features(x)
        for i, block in enumerate(self.features):
            x = block(x)
            if i == layer:
                return x
        raise TransferKitInputError(f"layer {layer} out of range")  # pragma: no cover

    def forward(self, x):
        pooled = self.forward_features(x).mean(dim=(2, 3))
        return self.classifier(pooled)


def _check_layer(layer, n_layers):
    if layer is None:
        return None
    if isinstance(layer, str):
        name = layer.removeprefix("features.")
        if not name.lstrip("-").isdigit():
            raise TransferKitInputError(
                f"layer must be an int in [0, {n_layers - 1}] or 'features.<i>'; got {layer!r}."
            )
        layer = int(name)
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise TransferKitInputError(f"layer must be an int or 'features.<i>'; got {layer!r}.")
    if layer < 0:
        layer += n_layers
    if not 0 <= layer < n_layers:
        raise TransferKitInputError(
            f"layer {layer} out of range: MobileNetV2 has feature blocks 0..{n_layers - 1}."
        )
    return None if layer == n_layers - 1 else layer


def build_mobilenet_v2(weights=None, device=None, layer=None, *, amp=None, input_size=None,
                       resize=None, hub_dir=None, download=None):
    """MobileNetV2 ImageNet backbone (1280-d pooled features by default).

    Parameters
    ----------
    weights : None, path, or "none"/False
        ``None``: ImageNet weights resolved by
        :func:`transferkit.backbones.weights.resolve_weights` (explicit path,
        offline package, torch hub cache, URL).  ``"none"``/``False``: random
        initialisation.
    device : str, optional
        ``None``/``"auto"``: CUDA, else MPS, else CPU.  The network is moved
        there on first use, not while building.
    layer : int or "features.<i>", optional
        Pool the output of an earlier block (0..18; negative counts from the
        end) instead of the last one.
    amp : bool, optional
        Autocast on CUDA (default on there).
    input_size, resize : int, optional
        Override the 224 crop / 256 resize (``resize`` defaults to
        ``input_size`` when only ``input_size`` is given).
    hub_dir, download
        See :func:`~transferkit.backbones.weights.resolve_weights`.

    Returns
    -------
    ImageBackbone
    """
    from transferkit.backbones.builtin import MOBILENET_V2

    model = MobileNetV2()
    layer = _check_layer(layer, model.num_layers)
    resolved = resolve_weights(MOBILENET_V2, weights, hub_dir=hub_dir, download=download)
    load_weights(model, resolved, "MobileNetV2 (torchvision key names expected)")
    dim = 1280 if layer is None else model.layer_channels(layer)
    return ImageBackbone(MOBILENET_V2, model, layer, dim, weights=resolved, device=device,
                         amp=amp, input_size=input_size, resize=resize)
