"""Data-parallel training of the engine (transferkit.deep.distributed): real multi-process runs
on the CPU (torchrun, gloo) against one process, shards, agreement, resume and clear errors."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from safetensors.torch import load_file  # noqa: E402

from transferkit.deep import Trainer, classification_loss  # noqa: E402
from transferkit.deep.data import epoch_batches  # noqa: E402
from transferkit.deep.distributed import shard  # noqa: E402
from transferkit.validation import TransferKitInputError  # noqa: E402

# Run by torchrun in each process; imported (not run) by the tests for the one-process reference.
_SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    import numpy as np
    import torch
    from safetensors.torch import save_file
    from transferkit.deep import Trainer, classification_loss

    SETTINGS = dict(epochs=10, batch_size=16, learning_rate=0.05, warmup=0.2, grad_clip=0.3,
                    patience=2, random_state=3, device="cpu")

    def data(rows):
        rng = np.random.default_rng(0)
        X = rng.normal(size=(rows + 40, 4)).astype("float32")
        y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype("int64")
        noisy = rng.random(rows) < 0.3          # noisy training labels: validation peaks early
        y[:rows][noisy] = 1 - y[:rows][noisy]
        return (X[:rows], y[:rows]), (X[rows:], y[rows:])

    def mlp():
        gen = torch.Generator().manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(),
                                    torch.nn.Linear(16, 2))
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        return model

    def weights(model):
        return {k: v.contiguous() for k, v in model.state_dict().items()}

    def strip(history):
        return [{k: v for k, v in e.items() if k != "seconds"} for e in history]

    if __name__ == "__main__":
        out, rows, rank = sys.argv[1], int(sys.argv[2]), int(os.environ["RANK"])
        train, val = data(rows)
        model = mlp()
        full = Trainer(**SETTINGS, distributed=True).fit(
            model, classification_loss, train, validation=val)
        save_file(weights(model), f"{out}/rank{rank}.safetensors")

        def slow(m, b):                   # the processes pass the budget at different steps
            time.sleep(0.01 * (1 + 2 * rank))
            return classification_loss(m, b)

        folder = f"{out}/ckpt"
        cut = Trainer(**SETTINGS, distributed=True, time_budget=0.1, checkpoint_dir=folder).fit(
            mlp(), slow, train, validation=val)
        resumed = mlp()
        again = Trainer(**SETTINGS, distributed=True, checkpoint_dir=folder, resume=True).fit(
            resumed, classification_loss, train, validation=val)
        if rank == 0:
            save_file(weights(resumed), f"{out}/resumed.safetensors")
            json.dump({"history": strip(full.history), "best_epoch": full.best_epoch,
                       "epochs": full.epochs, "stopped": full.stopped, "steps": full.steps,
                       "processes": full.processes, "cut": [cut.stopped, cut.steps],
                       "resumed_from": again.resumed_from_step,
                       "resumed_history": strip(again.history)},
                      open(f"{out}/result.json", "w"))
""")


def _launch(tmp_path, processes, rows):
    script = tmp_path / "train.py"
    script.write_text(_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", str(processes), str(script), str(tmp_path),
                          str(rows)], env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return runpy.run_path(str(script)), json.loads((tmp_path / "result.json").read_text())


# 2 processes: 99 rows = 6 x 16 + 3, shards 8/8 and 2/1; 3 processes: 98 rows = 6 x 16 + 2,
# shards 6/5/5 and 1/1/0 (one process runs a row with weight 0).
@pytest.mark.slow          # about 15 s per launch on two cores
@pytest.mark.parametrize("processes, rows", [(2, 99), (3, 98)])
def test_processes_train_like_one_process(tmp_path, processes, rows):
    module, got = _launch(tmp_path, processes, rows)
    sizes = [len(b) for b in epoch_batches(rows, 16, 3, 0)]
    assert sizes[-1] % processes and len(set(sizes)) == 2       # an uneven last batch

    train, val = module["data"](rows)
    model = module["mlp"]()
    one = Trainer(**module["SETTINGS"]).fit(model, classification_loss, train, validation=val)
    assert got["processes"] == processes and one.processes == 1
    assert (got["epochs"], got["best_epoch"], got["stopped"], got["steps"]) == (
        one.epochs, one.best_epoch, one.stopped, one.steps)
    assert got["stopped"] == "early stopping" and 1 < got["best_epoch"] < got["epochs"]
    for mine, theirs in zip(module["strip"](one.history), got["history"]):
        assert mine.keys() == theirs.keys() and mine["lr"] == theirs["lr"]
        assert theirs["metric"] == pytest.approx(mine["metric"], abs=1e-6)
        assert theirs["train_loss"] == pytest.approx(mine["train_loss"], abs=1e-6)

    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(processes)]
    for other in ranks[1:]:                                        # one model everywhere
        assert all(torch.equal(ranks[0][k], other[k]) for k in ranks[0])
    difference = max(float((ranks[0][k] - v).abs().max()) for k, v in model.state_dict().items())
    assert difference < 1e-5, difference

    # The time budget stopped every process at one step; resume continued that run.  With two
    # processes a sum over processes does not depend on the order (bit-identical resume); with
    # more, a fresh DDP's first bucket layout changes the order of the float sums.
    assert got["cut"][0] == "time budget" and got["resumed_from"] == got["cut"][1] > 0
    resumed = load_file(str(tmp_path / "resumed.safetensors"))
    for k in resumed:
        torch.testing.assert_close(resumed[k], ranks[0][k], rtol=0,
                                   atol=0 if processes == 2 else 1e-6)
    if processes == 2:
        assert got["resumed_history"] == got["history"]
    with pytest.raises(TransferKitInputError, match="processes"):
        Trainer(**module["SETTINGS"], checkpoint_dir=tmp_path / "ckpt", resume=True).fit(
            module["mlp"](), classification_loss, train, validation=val)


def test_distributed_without_a_launcher_is_the_one_process_run(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                 "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    rng = torch.Generator().manual_seed(0)
    X = torch.randn(45, 4, generator=rng)
    y = (X[:, 0] > 0).long()
    results, weights = [], []
    for distributed in (False, True):
        with torch.random.fork_rng():    # the same initial weights for both runs
            torch.manual_seed(1)
            model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                        torch.nn.Dropout(0.2), torch.nn.Linear(8, 2))
        results.append(Trainer(epochs=3, batch_size=8, device="cpu", patience=2,
                               distributed=distributed).fit(
            model, classification_loss, (X, y), validation=(X[:20], y[:20])))
        weights.append(model.state_dict())
    assert results[1].processes == 1
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(results[0].history) == strip(results[1].history)


def test_shards_split_every_global_batch_and_weight_the_loss():
    rows = torch.arange(10, 17)
    for processes in (1, 2, 3, 4, 9):
        parts = [shard(rows, r, processes) for r in range(processes)]
        kept = [p for p, w in parts if w > 0]
        assert torch.equal(torch.cat(kept), rows)                 # every row once, in order
        assert max(map(len, kept)) - min(map(len, kept)) <= 1
        assert sum(w for _, w in parts) == pytest.approx(processes)  # mean weight 1
        for part, w in parts:                                      # w = n_r W / G, or 0
            assert w == (len(part) * processes / len(rows) if w else 0.0) and len(part) >= 1


def test_missing_accelerate_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "accelerate", None)
    X, y = torch.randn(20, 4), torch.zeros(20, dtype=torch.long)
    with pytest.raises(TransferKitInputError, match=r'pip install "transferkit\[distributed\]"'):
        Trainer(epochs=1, distributed=True).fit(torch.nn.Linear(4, 2), classification_loss, (X, y))


@pytest.mark.parametrize("settings, fragment", [
    ({"distributed": "yes"}, "distributed: got 'yes'"),
    ({"distributed": True, "device": "cuda:1"}, "LOCAL_RANK"),
])
def test_bad_distributed_settings_are_named(settings, fragment):
    X, y = torch.randn(20, 4), torch.zeros(20, dtype=torch.long)
    with pytest.raises(TransferKitInputError, match=fragment):
        Trainer(epochs=1, **settings).fit(torch.nn.Linear(4, 2), classification_loss, (X, y))
