"""The training engine of transferkit.deep: schedule, a bare-loop reference, early stopping,
budget, seeding, checkpoints and exact resume (in process and after SIGKILL)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402

from transferkit.deep import Trainer, classification_loss, regression_loss  # noqa: E402
from transferkit.deep.data import epoch_batches  # noqa: E402
from transferkit.deep.schedule import warmup_cosine  # noqa: E402
from transferkit.validation import TransferKitInputError  # noqa: E402


def _data(n=90, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype("float32")
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype("int64")
    return X, y


def _mlp(seed=0, dropout=0.0):
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                torch.nn.Dropout(dropout), torch.nn.Linear(8, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return model


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ------------------------------------------------------------------ schedule
def test_warmup_cosine_closed_form():
    total, warm = 20, 4
    assert [warmup_cosine(t, total, warm) for t in range(warm)] == [0.25, 0.5, 0.75, 1.0]
    for t in range(warm, total):
        expected = 0.5 * (1 + math.cos(math.pi * (t - warm) / (total - warm)))
        assert warmup_cosine(t, total, warm) == pytest.approx(expected, abs=1e-15)
    after = [warmup_cosine(t, total, warm) for t in range(warm, total)]
    assert all(a >= b for a, b in zip(after, after[1:]))


def test_epoch_batches_cover_every_row_once_and_drop_a_single_last_row():
    batches = epoch_batches(33, 8, seed=3, epoch=2)
    rows = torch.cat(batches).tolist()
    assert len(rows) == 32 and len(set(rows)) == 32          # 33 = 4 x 8 + 1: one dropped
    assert [b.tolist() for b in batches] == [b.tolist() for b in epoch_batches(33, 8, 3, 2)]
    assert torch.cat(epoch_batches(33, 8, 3, 1)).tolist() != rows


# ------------------------------------------------------------------ reference loop
def test_engine_equals_a_bare_torch_loop():
    """Same order, AdamW groups, warm-up + cosine and clipping, written out by hand."""
    X, y = _data()
    epochs, bs, lr, wd, clip = 3, 16, 0.05, 0.01, 0.5
    engine_model = _mlp()
    result = Trainer(epochs=epochs, batch_size=bs, learning_rate=lr, weight_decay=wd,
                     warmup=0.2, grad_clip=clip, random_state=7).fit(
        engine_model, classification_loss, (X, y))

    model = _mlp()
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "lr": lr, "weight_decay": wd},
                             {"params": rest, "lr": lr, "weight_decay": 0.0}])
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    per_epoch = len(epoch_batches(len(X), bs, 7, 0))
    total, warm, step = epochs * per_epoch, round(0.2 * epochs * per_epoch), 0
    for epoch in range(epochs):
        gen = torch.Generator().manual_seed(7 * 1_000_003 + epoch)
        order = torch.randperm(len(X), generator=gen)
        for idx in torch.split(order, bs):
            if len(idx) == 1:
                continue
            f = (step + 1) / warm if step < warm else 0.5 * (
                1 + math.cos(math.pi * (step - warm) / (total - warm)))
            for g in opt.param_groups:
                g["lr"] = lr * f
            loss = torch.nn.functional.cross_entropy(model(Xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            step += 1
    assert result.steps == step == total
    for a, b in zip(engine_model.parameters(), model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_training_learns_and_regression_loss_works():
    X, y = _data(200)
    model = _mlp()
    before = classification_loss(model, (torch.from_numpy(X), torch.from_numpy(y))).item()
    Trainer(epochs=20, batch_size=32, learning_rate=0.02).fit(model, classification_loss, (X, y))
    after = classification_loss(model, (torch.from_numpy(X), torch.from_numpy(y))).item()
    assert after < 0.5 * before
    target = (X @ np.array([1.0, -2.0, 0.5, 0.0], dtype="float32")).astype("float32")
    linear = torch.nn.Linear(4, 1)
    Trainer(epochs=60, batch_size=32, learning_rate=0.05, weight_decay=0.0).fit(
        linear, regression_loss, (X, target))
    np.testing.assert_allclose(linear.weight.detach().numpy().ravel(), [1, -2, 0.5, 0], atol=0.05)


# ------------------------------------------------------------------ early stopping, budget
def test_early_stopping_restores_the_best_epoch():
    X, y = _data(120)
    Xv, yv = _data(60, seed=1)
    yv = 1 - yv                     # the better the fit, the worse the validation
    model = _mlp()
    result = Trainer(epochs=30, batch_size=16, learning_rate=0.05, patience=2).fit(
        model, classification_loss, (X, y), validation=(Xv, yv))
    assert result.stopped == "early stopping"
    assert result.epochs == result.best_epoch + 2 < 30
    metrics = [h["metric"] for h in result.history]
    assert result.best_metric == max(metrics) == metrics[result.best_epoch - 1]
    with torch.no_grad():
        restored = -classification_loss(model.eval(), (torch.from_numpy(Xv),
                                                       torch.from_numpy(yv)))
    assert float(restored) == pytest.approx(result.best_metric, abs=1e-6)


def test_time_budget_stops_cleanly():
    X, y = _data(400)

    def slow_loss(model, batch):
        time.sleep(0.02)
        return classification_loss(model, batch)

    result = Trainer(epochs=50, batch_size=8, time_budget=0.3).fit(_mlp(), slow_loss, (X, y))
    assert result.stopped == "time budget"
    assert 0 < result.steps < 50 * 50 and result.seconds < 2.0


def test_time_budget_stops_before_the_step_that_would_pass_it(monkeypatch):
    """On a fake clock where every step takes 1 s, a 3.5 s budget runs 3 steps
    (a fourth would end at 4 s), and a budget shorter than one step still runs one."""
    import transferkit.deep.engine as engine

    now = [0.0]
    monkeypatch.setattr(engine.time, "monotonic", lambda: now[0])

    def one_second_loss(model, batch):
        now[0] += 1.0
        return classification_loss(model, batch)

    X, y = _data(400)
    for budget, steps in ((3.5, 3), (0.5, 1)):
        result = Trainer(epochs=5, batch_size=8, time_budget=budget).fit(
            _mlp(), one_second_loss, (X, y))
        assert result.stopped == "time budget" and result.steps == steps


def test_nan_loss_names_the_likely_cause():
    X, y = _data()
    with pytest.raises(TransferKitInputError, match="learning rate too high"):
        Trainer(epochs=1).fit(_mlp(), lambda m, b: classification_loss(m, b) * float("nan"),
                              (X, y))


# ------------------------------------------------------------------ seeding
def test_seeded_runs_repeat_and_leave_the_global_generator_alone():
    X, y = _data()
    a, b, c = _mlp(dropout=0.3), _mlp(dropout=0.3), _mlp(dropout=0.3)
    state = torch.get_rng_state()
    Trainer(epochs=2, random_state=1).fit(a, classification_loss, (X, y))
    assert torch.equal(torch.get_rng_state(), state)
    Trainer(epochs=2, random_state=1).fit(b, classification_loss, (X, y))
    Trainer(epochs=2, random_state=2).fit(c, classification_loss, (X, y))
    _same(_weights(a), _weights(b))
    assert not torch.equal(a[0].weight, c[0].weight)


# ------------------------------------------------------------------ checkpoints
class _Interrupt(Exception):
    pass


def _interrupting(after_steps):
    calls = {"n": 0}

    def loss(model, batch):
        calls["n"] += 1
        if calls["n"] > after_steps:
            raise _Interrupt()
        return classification_loss(model, batch)
    return loss


def test_resume_after_an_interruption_is_exact(tmp_path):
    X, y = _data(100)
    Xv, yv = _data(40, seed=2)
    settings = dict(epochs=4, batch_size=16, learning_rate=0.03, random_state=5)
    whole = _mlp(dropout=0.2)
    full = Trainer(**settings).fit(whole, classification_loss, (X, y), validation=(Xv, yv))

    folder = tmp_path / "ckpt"
    with pytest.raises(_Interrupt):  # step 19 (loss calls count validations too), epoch 3
        Trainer(**settings, checkpoint_dir=folder, checkpoint_every=4).fit(
            _mlp(dropout=0.2), _interrupting(20), (X, y), validation=(Xv, yv))
    state = json.loads((folder / "state.json").read_text())
    assert state["step"] == 16 and state["position"] > 0
    resumed = _mlp(dropout=0.2)
    again = Trainer(**settings, checkpoint_dir=folder, resume=True).fit(
        resumed, classification_loss, (X, y), validation=(Xv, yv))
    assert again.resumed_from_step == 16
    _same(_weights(whole), _weights(resumed))
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(again.history) == strip(full.history)
    assert again.best_epoch == full.best_epoch


def test_existing_checkpoint_needs_resume_and_foreign_or_damaged_ones_are_refused(tmp_path):
    X, y = _data()
    folder = tmp_path / "ckpt"
    Trainer(epochs=1, checkpoint_dir=folder).fit(_mlp(), classification_loss, (X, y))
    with pytest.raises(TransferKitInputError, match="resume=True"):
        Trainer(epochs=1, checkpoint_dir=folder).fit(_mlp(), classification_loss, (X, y))
    with pytest.raises(TransferKitInputError, match="another model"):
        Trainer(epochs=1, checkpoint_dir=folder, resume=True).fit(
            torch.nn.Linear(4, 2), classification_loss, (X, y))
    with pytest.raises(TransferKitInputError, match="batch_size"):
        Trainer(epochs=1, batch_size=8, checkpoint_dir=folder, resume=True).fit(
            _mlp(), classification_loss, (X, y))
    weights = folder / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-3] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(TransferKitInputError, match="damaged"):
        Trainer(epochs=1, checkpoint_dir=folder, resume=True).fit(
            _mlp(), classification_loss, (X, y))
    (folder / "state.json").unlink()
    with pytest.raises(TransferKitInputError, match="damaged"):
        Trainer(epochs=1, checkpoint_dir=folder, resume=True).fit(
            _mlp(), classification_loss, (X, y))


_CHILD = textwrap.dedent("""
    import sys, time, numpy as np, torch
    from safetensors.torch import save_file
    torch.set_num_threads(1)
    from transferkit.deep import Trainer, classification_loss
    folder, out, slow, resume = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 4)).astype("float32"); y = (X[:, 0] > 0).astype("int64")
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                torch.nn.Linear(16, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    def loss(m, b):
        time.sleep(slow)
        return classification_loss(m, b)
    r = Trainer(epochs=4, batch_size=16, learning_rate=0.02, random_state=3,
                checkpoint_dir=None if folder == "-" else folder,
                checkpoint_every=None if folder == "-" else 3,
                resume=resume).fit(model, loss, (X, y), validation=(X[:40], y[:40]))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)
    print(r.steps, r.resumed_from_step)
""")


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_bit_identical_weights(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    run = lambda *a: subprocess.run([sys.executable, str(script), *a], env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=300)
    plain = run("-", str(tmp_path / "plain.safetensors"), "0", "0")
    assert plain.returncode == 0, plain.stderr
    folder = tmp_path / "ckpt"
    child = subprocess.Popen([sys.executable, str(script), str(folder),
                              str(tmp_path / "killed.safetensors"), "0.05", "0"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_file, deadline = folder / "state.json", time.time() + 120
    while time.time() < deadline:        # kill in epoch 2, after a mid-epoch checkpoint
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            state = {}
        if state.get("epoch", 0) >= 1 and state.get("position", 0) > 0:
            break
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert state.get("position", 0) > 0, "the child ended before a mid-epoch checkpoint"
    assert not (tmp_path / "killed.safetensors").exists()
    resumed = run(str(folder), str(tmp_path / "resumed.safetensors"), "0", "1")
    assert resumed.returncode == 0, resumed.stderr
    steps, start = resumed.stdout.split()
    assert int(start) > 0 and int(steps) == int(plain.stdout.split()[0])
    a = load_file(str(tmp_path / "plain.safetensors"))
    b = load_file(str(tmp_path / "resumed.safetensors"))
    _same(a, b)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("settings, fragment", [
    ({"epochs": 0}, "epochs"), ({"epochs": "3"}, "epochs"), ({"batch_size": 2.5}, "batch_size"),
    ({"learning_rate": -1}, "learning_rate"), ({"device": "gpu"}, "device"),
    ({"resume": True}, "checkpoint_dir"), ({"checkpoint_every": 5}, "checkpoint_dir"),
    ({"time_budget": "soon"}, "time_budget"), ({"mixed_precision": "yes"}, "mixed_precision"),
])
def test_bad_settings_are_named(settings, fragment):
    X, y = _data()
    with pytest.raises(TransferKitInputError, match=fragment):
        Trainer(**settings).fit(_mlp(), classification_loss, (X, y))


def test_bad_data_is_named():
    X, y = _data()
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(TransferKitInputError, match="NaN"):
        Trainer(epochs=1).fit(_mlp(), classification_loss, (bad, y))
    with pytest.raises(TransferKitInputError, match="different numbers of rows"):
        Trainer(epochs=1).fit(_mlp(), classification_loss, (X, y[:-1]))
    with pytest.raises(TransferKitInputError, match="must be numbers"):
        Trainer(epochs=1).fit(_mlp(), classification_loss, (X, y.astype(str)))
    with pytest.raises(TransferKitInputError, match="no rows"):
        Trainer(epochs=1).fit(_mlp(), classification_loss, (X[:0], y[:0]))
    with pytest.raises(TransferKitInputError, match="validation data"):
        Trainer(epochs=1, patience=2).fit(_mlp(), classification_loss, (X, y))
    frozen = _mlp()
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(TransferKitInputError, match="no trainable parameters"):
        Trainer(epochs=1).fit(frozen, classification_loss, (X, y))
    with pytest.raises(TransferKitInputError, match="CUDA is not available"):
        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
        Trainer(epochs=1, device="cuda").fit(_mlp(), classification_loss, (X, y))


def test_import_transferkit_stays_torch_free():
    code = "import sys, transferkit, transferkit.autopilot; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_checkpoint_files_are_safetensors_and_json_only(tmp_path):
    X, y = _data()
    Trainer(epochs=1, checkpoint_dir=tmp_path / "c").fit(_mlp(), classification_loss, (X, y))
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert names == ["manifest.json", "model.safetensors", "optimizer.safetensors",
                     "rng.safetensors", "state.json"]
    assert all(Path(tmp_path / "c" / n).read_bytes()[:1] != b"\x80" for n in names)  # no pickle
