"""LoRA adapters: the layer against its closed form, the merge, and the estimator's
``method="lora"`` on the offline MiniLM (what it trains, round trip, bad settings)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

from transferkit.deep.finetune import FineTuneClassifier, load_finetuned  # noqa: E402
from transferkit.deep.lora import add_lora, merge_lora  # noqa: E402
from transferkit.validation import TransferKitInputError  # noqa: E402

TEXTS = ["great drug, it helped a lot", "terrible side effects, stopped it",
         "works well and fast", "made me feel sick and dizzy", "no problems, very happy",
         "awful headache every day", "my pain is gone", "it did nothing but harm"] * 2
MOODS = np.array(["good", "bad"] * 8)


def _tiny_bert(seed=0):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        config = transformers.BertConfig(hidden_size=16, num_hidden_layers=2,
                                         num_attention_heads=2, intermediate_size=32,
                                         vocab_size=60, hidden_dropout_prob=0.0,
                                         attention_probs_dropout_prob=0.0)
        return transformers.BertModel(config).eval()


def _ids(seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 60, (3, 7)))


def test_adapted_layer_matches_its_closed_form_and_merges_exactly():
    model = _tiny_bert()
    ids = _ids()
    before = model(ids).last_hidden_state.detach()
    w0 = model.encoder.layer[0].attention.self.query.weight.detach().clone()
    with torch.random.fork_rng():
        torch.manual_seed(1)
        params = add_lora(model, rank=2, alpha=6.0, dropout=0.0)
    assert len(params) == 2 * 2 * 2                  # A and B, query and value, 2 layers
    assert all(p.requires_grad for p in params)
    assert not any(p.requires_grad for n, p in model.named_parameters() if "lora_" not in n)
    # B starts at zero: the adapted network is the pretrained one
    torch.testing.assert_close(model(ids).last_hidden_state, before)
    layer = model.encoder.layer[0].attention.self.query
    with torch.no_grad():
        layer.lora_B["default"].weight.normal_(generator=torch.Generator().manual_seed(2))
    A = layer.lora_A["default"].weight.detach()
    B = layer.lora_B["default"].weight.detach()
    x = torch.randn(4, 16, generator=torch.Generator().manual_seed(3))
    naive = x @ w0.T + layer.base_layer.bias.detach() + (6.0 / 2) * x @ A.T @ B.T
    torch.testing.assert_close(layer(x), naive, rtol=1e-5, atol=1e-6)
    adapted = model(ids).last_hidden_state.detach()
    assert not torch.allclose(adapted, before)
    merged = merge_lora(model)
    assert merged is model
    assert isinstance(model.encoder.layer[0].attention.self.query, torch.nn.Linear)
    assert not any("lora_" in n for n, _ in model.named_parameters())
    delta = model.encoder.layer[0].attention.self.query.weight.detach() - w0
    torch.testing.assert_close(delta, 3.0 * B @ A, rtol=1e-5, atol=1e-6)
    assert torch.linalg.matrix_rank(delta).item() <= 2
    torch.testing.assert_close(model(ids).last_hidden_state, adapted, rtol=1e-5, atol=1e-5)


def test_lora_fine_tuning_moves_only_low_rank_attention_updates(tmp_path):
    pretrained = FineTuneClassifier("all-MiniLM-L6-v2", backbone_options={"max_length": 16})
    start = {n: p.detach().clone() for n, p in pretrained._body()[0].named_parameters()}
    model = FineTuneClassifier("all-MiniLM-L6-v2", method="lora", lora_rank=4, epochs=2,
                               probe_epochs=5, backbone_options={"max_length": 16},
                               random_state=0).fit(TEXTS, MOODS)
    after = dict(model.network_.body.named_parameters())
    assert set(after) == set(start)                  # merged: the plain architecture again
    moved = {n for n in start if not torch.equal(after[n], start[n])}
    assert moved and all(("query.weight" in n or "value.weight" in n) for n in moved)
    for n in moved:
        assert torch.linalg.matrix_rank(after[n].detach() - start[n]).item() <= 4
    assert model.training_["probe"].epochs == 5 and model.training_["fine_tune"].epochs == 2
    proba = model.predict_proba(TEXTS[:4])
    again = FineTuneClassifier("all-MiniLM-L6-v2", method="lora", lora_rank=4, epochs=2,
                               probe_epochs=5, backbone_options={"max_length": 16},
                               random_state=0).fit(TEXTS, MOODS)
    np.testing.assert_array_equal(again.predict_proba(TEXTS[:4]), proba)
    model.save(tmp_path / "lora")
    np.testing.assert_allclose(load_finetuned(tmp_path / "lora").predict_proba(TEXTS[:4]),
                               proba, atol=1e-5)


@pytest.mark.parametrize("settings, message", [
    ({"lora_rank": 0}, "lora_rank must be a whole number"),
    ({"lora_rank": 2.5}, "lora_rank must be a whole number"),
    ({"lora_dropout": 1.0}, r"lora_dropout must be a number in \[0, 1\)"),
    ({"lora_alpha": -1}, "lora_alpha must be a positive number"),
    ({"lora_targets": "query"}, "lora_targets must be a list of layer names"),
    ({"lora_targets": ["no_such_layer"]}, "name them with lora_targets"),
])
def test_bad_lora_settings_are_refused_clearly(settings, message):
    model = FineTuneClassifier("all-MiniLM-L6-v2", method="lora", epochs=1, probe_epochs=1,
                               backbone_options={"max_length": 8}, **settings)
    with pytest.raises(TransferKitInputError, match=message):
        model.fit(TEXTS, MOODS)


def test_lora_on_a_module_that_is_not_a_text_encoder_is_refused():
    body = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU())
    X = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    with pytest.raises(TransferKitInputError, match="adapts transformer text encoders"):
        FineTuneClassifier(body, method="lora", epochs=1).fit(X, MOODS)
