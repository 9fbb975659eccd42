"""Fine-tuning a pretrained network on the target rows, scikit-learn style.

:class:`FineTuneClassifier` and :class:`FineTuneRegressor` put a linear head on
a backbone (a registered image backbone such as ``"mobilenet_v2"``, or any
``torch.nn.Module`` mapping a float batch to (B, D) features) and train with
the one engine (:class:`~transferkit.deep.Trainer`); a registered text
backbone (``"all-MiniLM-L6-v2"``, Hugging Face encoders) takes a list of
texts, its blocks being the embeddings and each transformer layer.  ``method``:

* ``"linear_probe"``: the backbone frozen (BatchNorm in inference mode),
  globally pooled features computed once, a dense head trained on them with
  cross-entropy (or squared error);
* ``"partial"``: the last ``unfreeze`` blocks and the head trained;
* ``"full"``: every layer trained, with layer-wise learning-rate decay: block
  :math:`i` of :math:`L` gets :math:`\\eta \\, \\gamma^{L-1-i}` (``layer_decay``
  :math:`\\gamma`), the head :math:`\\eta_{head}` (Howard & Ruder 2018, ULMFiT;
  Clark et al. 2020, ELECTRA);
* ``"l2sp"``: every layer trained, the loss plus
  :math:`\\tfrac{\\alpha}{2}\\lVert w - w^0\\rVert^2` over the pretrained weights
  and :math:`\\tfrac{\\beta}{2}\\lVert w_{head}\\rVert^2` (Li, Grandvalet &
  Davoine 2018, "Explicit inductive bias for transfer learning with
  convolutional networks"); no weight decay towards zero on the backbone;
* ``"lp_ft"``: the linear probe first, then every layer fine-tuned from the
  probed head at a small rate (Kumar et al. 2022, "Fine-tuning can distort
  pretrained features and underperform out-of-distribution");
* ``"lora"`` (Hugging Face text encoders, needs the ``peft`` extra): the
  linear probe first, then low-rank adapters :math:`\tfrac{\alpha}{r} B A` of
  rank ``lora_rank`` on the attention layers and the head trained, the
  pretrained weights frozen (Hu et al. 2022); the adapters are merged into
  the weights after training (:mod:`transferkit.deep.lora`), so the saved
  model is the plain architecture.

Small-data defaults: batch size 16; fine-tuning rate 3e-4 and 15 epochs for
image backbones and plain modules, 1e-4 and 5 epochs for text transformers,
2e-3 and 10 epochs for LoRA (rank 8, :math:`\alpha` 16, dropout 0.1);
the probe's head at 1e-2 for 40 epochs; BatchNorm statistics frozen (running
means and variances kept from pretraining: batches of 16 estimate them
badly; ``freeze_batchnorm=False`` trains them, as training from scratch
needs), image augmentation by random horizontal flips and shifts of up to an
eighth of the side (padded by reflection), everything seeded by
``random_state``.  ``backbone_options={"weights": "none"}`` gives the same
architecture from random initialisation: the from-scratch reference.

Example
-------
>>> import numpy as np, torch
>>> body = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU())
>>> X = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
>>> y = np.where(X[:, 0] > 0, "a", "b")
>>> model = FineTuneClassifier(body, method="full", epochs=5, random_state=0).fit(X, y)
>>> model.predict(X[:3]).tolist() == model.classes_[model.predict_proba(X[:3]).argmax(1)].tolist()
True
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from transferkit.deep.engine import Trainer
from transferkit.validation import TransferKitInputError

__all__ = ["FineTuneClassifier", "FineTuneRegressor", "load_finetuned", "METHODS"]

METHODS = ("linear_probe", "partial", "full", "l2sp", "lp_ft", "lora")
#: Epochs of each stage when ``epochs``/``probe_epochs`` are not given.
DEFAULT_EPOCHS, DEFAULT_PROBE_EPOCHS = 15, 40
#: Fine-tuning rate when ``learning_rate`` is not given: convolutional image
#: backbones and plain modules, then text transformers (which diverge at higher
#: rates; on 200 drug reviews 1e-4 beat 2e-5 and 5e-5), and their epochs.
DEFAULT_LEARNING_RATE, TEXT_LEARNING_RATE, TEXT_EPOCHS = 3e-4, 1e-4, 5
#: LoRA's rate and epochs when not given: its few parameters want a larger rate
#: and more epochs than full fine-tuning (200 drug reviews, balanced accuracy:
#: 5e-4/1e-3/2e-3 x 5 epochs 0.623/0.641/0.658, 1e-3/2e-3 x 10 epochs 0.674/0.679).
LORA_LEARNING_RATE, LORA_EPOCHS = 2e-3, 10
_PREDICT_CHUNK = 256
#: A stage whose ``time_budget`` share is spent still gets this many seconds
#: (one step); a fine-tuning stage after a probe is skipped instead.
MIN_STAGE_BUDGET = 1e-3


class _Network(torch.nn.Module):
    """Backbone body + global pooling + linear head; BatchNorm kept in inference mode."""

    def __init__(self, body, layer, feature_dim, n_outputs, freeze_batchnorm=True):
        super().__init__()
        self.body, self.layer = body, layer
        self.head = torch.nn.Linear(int(feature_dim), int(n_outputs))
        self.freeze_batchnorm = freeze_batchnorm

    def features(self, x):
        if hasattr(self.body, "forward_features"):
            return self.body.forward_features(x, self.layer).float().mean(dim=(2, 3))
        out = self.body(x)
        return out.float().reshape(out.shape[0], -1)

    def forward(self, x):
        return self.head(self.features(x))

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_batchnorm:
            for module in self.body.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self


class _TextBody(torch.nn.Module):
    """A Hugging Face text encoder as a trainable body: input rows are the token ids
    and attention mask packed as one (B, 2, T) integer tensor; output the backbone's
    pooled (B, D) features (its own pooling, mean over real tokens by default)."""

    def __init__(self, backbone):
        super().__init__()
        self.encoder = backbone.module
        self._backbone = backbone

    def forward(self, x):
        return self._backbone.features({"input_ids": x[:, 0], "attention_mask": x[:, 1]})

    def blocks(self) -> list:
        """Embeddings, then each transformer layer, then the rest (e.g. the pooler)."""
        layers = getattr(getattr(self.encoder, "encoder", None), "layer", None)
        if layers is None:
            return [self.encoder]
        rest = [m for name, m in self.encoder.named_children()
                if name not in ("embeddings", "encoder")]
        return [self.encoder.embeddings, *layers, *rest]

    def prepare(self, texts):
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TransferKitInputError(
                "A text backbone needs X as a list (or column) of texts, one string per row.")
        encoded = self._backbone.prepare(list(texts))
        return torch.stack([encoded["input_ids"], encoded["attention_mask"]], dim=1)


def _blocks(body) -> list:
    """The body's blocks that hold parameters, in input-to-output order:
    ``body.features`` children where that is a Sequential (MobileNetV2,
    EfficientNet-Lite0) then the other children, else its children."""
    features = getattr(body, "features", None)
    if isinstance(body, _TextBody):
        children = body.blocks()
    elif isinstance(features, torch.nn.Sequential):
        rest = [m for name, m in body.named_children() if name != "features"]
        children = list(features.children()) + rest
    else:
        children = list(body.children()) or [body]
    return [block for block in children if any(True for _ in block.parameters())]


def _augment(x):
    """Random horizontal flips and shifts (up to 1/8 of the side, reflection padding)
    of an image batch (B, C, H, W); the global generator is seeded by the engine."""
    flip = torch.rand(x.shape[0]) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1).to(x.device), x.flip(3), x)
    pad = max(1, x.shape[-1] // 8)
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy, dx = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,)))
    return padded[..., dy:dy + x.shape[-2], dx:dx + x.shape[-1]].contiguous()


class _FineTune(BaseEstimator):
    _task = "classification"

    def __init__(self, backbone="mobilenet_v2", method="lp_ft", backbone_options=None,
                 epochs=None, probe_epochs=None, batch_size=16, learning_rate=None,
                 head_learning_rate=1e-2, unfreeze=3, layer_decay=0.7, l2sp_alpha=0.01,
                 l2sp_beta=0.01, lora_rank=8, lora_alpha=16.0, lora_dropout=0.1,
                 lora_targets=None, augment=True, freeze_batchnorm=True, time_budget=None,
                 random_state=0, device="auto", progress=False):
        self.backbone = backbone
        self.method = method
        self.backbone_options = backbone_options
        self.epochs = epochs
        self.probe_epochs = probe_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.unfreeze = unfreeze
        self.layer_decay = layer_decay
        self.l2sp_alpha = l2sp_alpha
        self.l2sp_beta = l2sp_beta
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.lora_targets = lora_targets
        self.augment = augment
        self.freeze_batchnorm = freeze_batchnorm
        self.time_budget = time_budget
        self.random_state = random_state
        self.device = device
        self.progress = progress

    # ---------------------------------------------------------------- building
    def _body(self):
        """(body module, layer, feature dim, prepare function, is_image)."""
        options = dict(self.backbone_options or {})
        if isinstance(self.backbone, str):
            from transferkit.backbones import build_backbone

            built = build_backbone(self.backbone, **options)
            if built.modality == "text" and hasattr(built, "tokenizer"):
                body = _TextBody(built)
                return body, None, built.feature_dim, body.prepare, False
            if not hasattr(built.module, "forward_features"):
                raise TransferKitInputError(
                    f"Fine-tuning supports image backbones with forward_features, Hugging "
                    f"Face text encoders and plain torch modules; {self.backbone!r} is "
                    f"neither.")
            def prepare_images(items):
                # a 1-D object array (image paths, as the autopilot passes) is a list
                if isinstance(items, np.ndarray) and items.dtype == object and items.ndim == 1:
                    items = items.tolist()
                return built.prepare(items)
            return built.module, built.layer, built.feature_dim, prepare_images, True
        if isinstance(self.backbone, torch.nn.Module):
            def prepare(items):
                array = np.asarray(items, dtype=np.float32)
                if not np.isfinite(array).all():
                    raise TransferKitInputError(
                        "X holds NaN or infinite values; remove or impute them first.")
                return torch.from_numpy(array)
            return self.backbone, None, options.get("feature_dim"), prepare, False
        raise TransferKitInputError(
            f"backbone must be a registered backbone name or a torch.nn.Module, got "
            f"{type(self.backbone).__name__}.")

    def _check(self):
        if self.method not in METHODS:
            raise TransferKitInputError(
                f"method must be one of {', '.join(METHODS)}; got {self.method!r}.")
        for name in ("unfreeze", "lora_rank"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise TransferKitInputError(f"{name} must be a whole number >= 1, got {value!r}.")
        value = self.lora_dropout
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise TransferKitInputError(f"lora_dropout must be a number in [0, 1), got {value!r}.")
        value = self.lora_targets
        if value is not None and (isinstance(value, str) or not all(isinstance(v, str)
                                                                    for v in value)):
            raise TransferKitInputError(
                f"lora_targets must be a list of layer names such as ['query', 'value'], "
                f"got {value!r}.")
        for name in ("learning_rate", "head_learning_rate", "layer_decay", "lora_alpha"):
            value = getattr(self, name)
            if name == "learning_rate" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise TransferKitInputError(f"{name} must be a positive number, got {value!r}.")
        for name in ("l2sp_alpha", "l2sp_beta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise TransferKitInputError(f"{name} must be a number >= 0, got {value!r}.")

    def _targets(self, y):
        raise NotImplementedError

    def _loss(self, outputs, targets):
        raise NotImplementedError

    def _trainer(self, epochs, learning_rate, weight_decay, budget):
        return Trainer(epochs=epochs, batch_size=self.batch_size, learning_rate=learning_rate,
                       weight_decay=weight_decay, time_budget=budget,
                       random_state=self.random_state, device=self.device,
                       progress=self.progress)

    # ---------------------------------------------------------------- fit
    def fit(self, X, y, init_from=None):
        """Fine-tune on ``X`` (images, texts or arrays) and ``y``.

        ``init_from``: a fitted model over the same backbone whose body weights
        replace the pretrained ones before training (the second stage of
        source-then-target fine-tuning); the head starts afresh.
        """
        self._check()
        started = time.monotonic()
        with torch.random.fork_rng():      # seeded initialisation, caller's state kept
            torch.manual_seed(int(self.random_state))
            body, layer, dim, prepare, is_image = self._body()
            inputs = prepare(X)
            targets = self._targets(y)
            if len(inputs) != len(targets):
                raise TransferKitInputError(
                    f"X has {len(inputs)} rows but y has {len(targets)}; give one label per "
                    f"row.")
            if init_from is not None:
                self._start_from(body, init_from)
            if self.method == "lora":
                self._add_adapters(body)
            if dim is None:
                with torch.no_grad():
                    dim = body(inputs[:1]).reshape(1, -1).shape[1]
            network = _Network(body, layer, dim, self._n_outputs, bool(self.freeze_batchnorm))
        self.network_, self.is_image_, self.feature_dim_ = network, is_image, int(dim)
        self.learning_rate_ = self._rate(body)
        self.epochs_ = self.epochs or (LORA_EPOCHS if self.method == "lora" else
                                       TEXT_EPOCHS if isinstance(body, _TextBody)
                                       else DEFAULT_EPOCHS)
        self._prepare = prepare
        self.training_ = {}
        budget, skipped = self.time_budget, []

        def left():
            """Seconds of ``time_budget`` left (building, decoding and the probe's
            features count too); at least one training step always runs."""
            return None if budget is None else max(MIN_STAGE_BUDGET,
                                                   budget - (time.monotonic() - started))

        probed = self.method in ("linear_probe", "lp_ft", "lora")
        if probed:
            self.training_["probe"] = self._probe(network, inputs, targets, left())
        if self.method != "linear_probe":
            if probed and budget is not None and left() <= MIN_STAGE_BUDGET:
                skipped = ["fine_tune"]      # the budget is spent: the probed model stays
            else:
                self.training_["fine_tune"] = self._fine_tune(network, inputs, targets,
                                                              left(), is_image)
        if self.method == "lora":
            from transferkit.deep.lora import merge_lora

            merge_lora(body.encoder)
        network.eval()
        self.fit_seconds_ = time.monotonic() - started
        self.stopped_ = [stage for stage, result in self.training_.items()
                         if result.stopped == "time budget"] + skipped
        return self

    def _start_from(self, body, fitted) -> None:
        check_is_fitted(fitted, "network_")
        try:
            body.load_state_dict(fitted.network_.body.state_dict())
        except RuntimeError as exc:
            raise TransferKitInputError(
                f"init_from must be fitted over the same backbone ({self.backbone!r}); its "
                f"weights do not fit ({exc}).") from None

    def _add_adapters(self, body) -> None:
        if not isinstance(body, _TextBody):
            raise TransferKitInputError(
                "method='lora' adapts transformer text encoders (e.g. 'all-MiniLM-L6-v2'); "
                "for an image backbone use 'partial', 'lp_ft' or 'l2sp'.")
        from transferkit.deep.lora import add_lora

        add_lora(body.encoder, self.lora_rank, self.lora_alpha, self.lora_dropout,
                 self.lora_targets)

    def _probe(self, network, inputs, targets, budget):
        for p in network.body.parameters():
            p.requires_grad_(False)
        network.eval()
        with torch.no_grad():
            feats = torch.cat([network.features(inputs[i:i + _PREDICT_CHUNK])
                               for i in range(0, len(inputs), _PREDICT_CHUNK)])
        head = network.head
        result = self._trainer(self.probe_epochs or DEFAULT_PROBE_EPOCHS,
                               self.head_learning_rate, 1e-4, budget).fit(
            head, lambda m, b: self._loss(m(b[0]), b[1]), (feats, targets))
        return result

    def _rate(self, body) -> float:
        """``learning_rate``, or the default for this method and kind of body."""
        if self.learning_rate:
            return self.learning_rate
        if self.method == "lora":
            return LORA_LEARNING_RATE
        return TEXT_LEARNING_RATE if isinstance(body, _TextBody) else DEFAULT_LEARNING_RATE

    def _groups(self, network):
        rate = self._rate(network.body)
        head = {"params": list(network.head.parameters()), "lr": self.head_learning_rate}
        blocks = _blocks(network.body)
        for p in network.body.parameters():
            p.requires_grad_(False)
        if self.method == "lora":       # the adapters (add_lora) and the head only
            adapters = [p for name, p in network.body.named_parameters() if "lora_" in name]
            for p in adapters:
                p.requires_grad_(True)
            head["lr"] = rate
            return [head, {"params": adapters, "lr": rate}]
        if self.method == "partial":
            chosen = blocks[-int(self.unfreeze):]
            for block in chosen:
                for p in block.parameters():
                    p.requires_grad_(True)
            return [head, {"params": [p for b in chosen for p in b.parameters()],
                           "lr": rate}]
        for p in network.body.parameters():
            p.requires_grad_(True)
        if self.method == "lp_ft":
            head["lr"] = rate
        if self.method == "full":
            L = len(blocks)
            return [head] + [{"params": list(b.parameters()),
                              "lr": rate * self.layer_decay ** (L - 1 - i)}
                             for i, b in enumerate(blocks)]
        group = {"params": list(network.body.parameters()), "lr": rate}
        if self.method == "l2sp":
            group["weight_decay"] = 0.0
            head["weight_decay"] = 0.0
        return [head, group]

    def _fine_tune(self, network, inputs, targets, budget, is_image):
        groups = self._groups(network)
        anchor = None
        if self.method == "l2sp":
            anchor = [(p, p.detach().clone()) for p in network.body.parameters()]
        augment = self.augment and is_image

        def loss(model, batch):
            x = _augment(batch[0]) if augment else batch[0]
            value = self._loss(model(x), batch[1])
            if anchor is not None:
                # the network's own parameters, not ``model``'s: the same under a
                # data-parallel wrapper, which has no ``head`` attribute
                drift = sum(((p - p0.to(p.device)) ** 2).sum() for p, p0 in anchor)
                value = value + 0.5 * self.l2sp_alpha * drift + \
                    0.5 * self.l2sp_beta * (network.head.weight ** 2).sum()
            return value

        return self._trainer(self.epochs_, self.learning_rate_, 0.01,
                             budget).fit(network, loss, (inputs, targets), param_groups=groups)

    # ---------------------------------------------------------------- predict
    def _outputs(self, X):
        """Network outputs for ``X``, prepared and run chunk by chunk (images are
        decoded and resized only :data:`_PREDICT_CHUNK` at a time)."""
        check_is_fitted(self, "network_")
        rows = X if isinstance(X, (np.ndarray, torch.Tensor)) else list(X)
        if len(rows) == 0:
            raise TransferKitInputError("No rows to predict (X is empty).")
        network = self.network_.eval()
        device = next(network.parameters()).device
        with torch.no_grad():
            return torch.cat([network(self._prepare(rows[i:i + _PREDICT_CHUNK]).to(device))
                              .float().cpu() for i in range(0, len(rows), _PREDICT_CHUNK)])

    # ---------------------------------------------------------------- folder
    def save(self, folder, overwrite: bool = False) -> None:
        """A model folder (through :class:`~transferkit.output.OutputFolder`):
        ``weights.safetensors`` and ``model.json``; no pickle, no code."""
        from safetensors.torch import save_file

        from transferkit.output import OutputFolder

        check_is_fitted(self, "network_")
        if not isinstance(self.backbone, str):
            raise TransferKitInputError(
                "Only models over a registered backbone name can be saved as a folder (a "
                "custom torch module is code, which a model folder never holds).")
        params = {k: v for k, v in self.get_params().items()}
        meta = {"format": "transferkit-finetune/1", "class": type(self).__name__,
                "params": params, "classes": self._classes_json(),
                "target_scale": [getattr(self, "y_mean_", 0.0), getattr(self, "y_scale_", 1.0)],
                "feature_dim": self.feature_dim_}
        with OutputFolder(folder, overwrite=overwrite, settings={"format": meta["format"]}) as st:
            save_file({k: v.detach().cpu().contiguous()
                       for k, v in self.network_.state_dict().items()},
                      str(st / "weights.safetensors"))
            (st / "model.json").write_text(json.dumps(meta, indent=1, default=str))

    def _classes_json(self):
        return None

    def _rebuild(self, weights: dict) -> None:
        """The fitted network from its saved weights: the backbone built without
        loading (or downloading) pretrained image weights, then ``weights`` loaded."""
        from transferkit.backbones import get_backbone_config

        given = self.backbone_options
        if get_backbone_config(self.backbone).modality == "image":
            # every weight is overwritten below: skip loading (or downloading) ImageNet's
            self.backbone_options = {**(given or {}), "weights": "none"}
        try:
            body, layer, _, prepare, is_image = self._body()
        finally:
            self.backbone_options = given
        n_out = len(self.classes_) if hasattr(self, "classes_") else 1
        network = _Network(body, layer, self.feature_dim_, n_out, bool(self.freeze_batchnorm))
        try:
            network.load_state_dict(weights)
        except RuntimeError as exc:
            raise TransferKitInputError(
                f"The saved weights do not fit a {self.backbone!r} network ({exc}).") from None
        self.network_, self.is_image_, self._prepare = network.eval(), is_image, prepare

    # pickling (a model inside a saved pipeline): weights as safetensors bytes, the
    # network rebuilt from the backbone's name -- no torch module is pickled
    def __getstate__(self):
        state = self.__dict__.copy()
        if "network_" in state and isinstance(self.backbone, str):
            from safetensors.torch import save

            network = state.pop("network_")
            state.pop("_prepare", None)
            state["_weights_safetensors"] = save(
                {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()})
        return state

    def __setstate__(self, state):
        blob = state.pop("_weights_safetensors", None)
        self.__dict__.update(state)
        if blob is not None:
            from safetensors.torch import load

            self._rebuild(load(blob))


class FineTuneClassifier(ClassifierMixin, _FineTune):
    """Fine-tuned network + softmax head (see the module docstring for every setting)."""

    def _targets(self, y):
        labels = np.asarray(y)
        if labels.ndim != 1:
            raise TransferKitInputError(f"y must be one label per row, got shape {labels.shape}.")
        if len(labels) == 0:
            raise TransferKitInputError("No rows to train on (y is empty).")
        if labels.dtype == object and any(v is None or v != v for v in labels):
            raise TransferKitInputError("y has missing labels; fine-tuning needs a label per row.")
        self.classes_, codes = np.unique(labels, return_inverse=True)
        if len(self.classes_) < 2:
            raise TransferKitInputError(
                f"y holds a single class ({self.classes_[0]!r}); a classifier needs two.")
        self._n_outputs = len(self.classes_)
        return torch.from_numpy(codes.astype(np.int64))

    def _loss(self, outputs, targets):
        return F.cross_entropy(outputs, targets)

    def predict_proba(self, X) -> np.ndarray:
        return torch.softmax(self._outputs(X), dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def _classes_json(self):
        return self.classes_.tolist()


class FineTuneRegressor(RegressorMixin, _FineTune):
    """Fine-tuned network + linear head for a numeric target (standardised while training)."""

    def _targets(self, y):
        try:
            values = np.asarray(y, dtype=float)
        except (TypeError, ValueError):
            values = np.array([np.nan])
        if values.ndim != 1 or not len(values) or not np.isfinite(values).all():
            raise TransferKitInputError(
                "y must be one finite number per row (a regressor; for labels use "
                "FineTuneClassifier).")
        self.y_mean_, self.y_scale_ = float(values.mean()), float(values.std() or 1.0)
        self._n_outputs = 1
        return torch.from_numpy(((values - self.y_mean_) / self.y_scale_).astype(np.float32))

    def _loss(self, outputs, targets):
        return F.mse_loss(outputs.reshape(-1), targets)

    def predict(self, X) -> np.ndarray:
        return self._outputs(X).numpy().reshape(-1) * self.y_scale_ + self.y_mean_


def load_finetuned(folder):
    """A fine-tuned model saved by ``save``: the backbone rebuilt without downloading
    weights, then the saved weights loaded (safetensors only)."""
    from safetensors.torch import load_file

    from transferkit.output import verify

    folder = Path(folder)
    verify(folder)
    meta = json.loads((folder / "model.json").read_text())
    if meta.get("format") != "transferkit-finetune/1" or meta.get("class") not in (
            "FineTuneClassifier", "FineTuneRegressor"):
        raise TransferKitInputError(f"{folder} is not a transferkit fine-tuned model folder.")
    cls = FineTuneClassifier if meta["class"] == "FineTuneClassifier" else FineTuneRegressor
    model = cls(**meta["params"])
    if meta["classes"] is not None:
        model.classes_ = np.asarray(meta["classes"])
    else:
        model.y_mean_, model.y_scale_ = (float(v) for v in meta["target_scale"])
    model.feature_dim_ = int(meta["feature_dim"])
    model._rebuild(load_file(str(folder / "weights.safetensors")))
    return model
