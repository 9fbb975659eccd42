"""LoRA adapters on a transformer encoder, through Hugging Face PEFT.

Low-rank adaptation (Hu et al. 2022, "LoRA: Low-rank adaptation of large
language models", ICLR) keeps a pretrained weight :math:`W_0 \\in
\\mathbb{R}^{d_{out} \\times d_{in}}` frozen and trains a low-rank update: the
layer computes

.. math::  h = W_0 x + \\frac{\\alpha}{r} B A \\, \\mathrm{dropout}(x),
           \\qquad A \\in \\mathbb{R}^{r \\times d_{in}},\\; B \\in \\mathbb{R}^{d_{out} \\times r},

with :math:`B = 0` at the start (the adapted network starts as the pretrained
one) and :math:`r \\ll \\min(d_{in}, d_{out})`.  After training the update is
folded into the weight, :math:`W = W_0 + \\frac{\\alpha}{r} B A` (a change of
rank at most :math:`r`), so the merged network has the original architecture
and predicts without PEFT installed.

:func:`add_lora` injects the adapters in place (PEFT's
``inject_adapter_in_model``; the target layers default to PEFT's choice for the
architecture, ``query`` and ``value`` for BERT-family encoders such as
MiniLM) and returns the adapter parameters, the only ones left trainable in
the module; :func:`merge_lora` folds them in and puts the plain layers back.

Example
-------
>>> import torch
>>> from transformers import BertConfig, BertModel
>>> encoder = BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
...                                intermediate_size=32, vocab_size=50))
>>> params = add_lora(encoder, rank=2, alpha=4, dropout=0.0)
>>> len(params)          # A and B of query and value in the one layer
4
>>> merge_lora(encoder) is encoder
True
"""

from __future__ import annotations

import torch

from transferkit.validation import TransferKitInputError

__all__ = ["add_lora", "merge_lora"]


def _peft():
    try:
        import peft
    except ImportError:
        raise TransferKitInputError(
            "method='lora' needs Hugging Face PEFT: pip install 'transferkit[peft]'.") from None
    return peft


def add_lora(module: torch.nn.Module, rank: int = 8, alpha: float = 16.0,
             dropout: float = 0.1, target_modules=None) -> list:
    """Inject LoRA adapters into ``module`` (in place); every other parameter is
    frozen.  Returns the adapter parameters (to train).  Draws the initial
    :math:`A` from the global torch generator: seed it (or fork it) first."""
    peft = _peft()
    config = peft.LoraConfig(r=int(rank), lora_alpha=float(alpha), lora_dropout=float(dropout),
                             target_modules=target_modules, bias="none")
    try:
        peft.inject_adapter_in_model(config, module)
    except ValueError as exc:
        raise TransferKitInputError(
            f"LoRA could not find its target layers in this encoder ({exc}); name them with "
            f"lora_targets, e.g. ['query', 'value'].") from None
    params = []
    for name, p in module.named_parameters():
        adapter = "lora_" in name
        p.requires_grad_(adapter)
        if adapter:
            params.append(p)
    if not params:
        raise TransferKitInputError(
            "LoRA found no layer to adapt in this encoder; name them with lora_targets.")
    return params


def merge_lora(module: torch.nn.Module) -> torch.nn.Module:
    """Fold every LoRA update into its base weight and put the plain layer back
    (in place); returns ``module``."""
    from peft.tuners.lora import LoraLayer

    found = [(name, m) for name, m in module.named_modules() if isinstance(m, LoraLayer)]
    for name, layer in found:
        layer.merge()
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, layer.get_base_layer())
    return module
