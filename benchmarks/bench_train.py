"""Benchmark: the training engine's throughput against a bare torch loop, and checkpoint cost.

Run from the repository root::

    python benchmarks/bench_train.py            # 3 alternating rounds
    python benchmarks/bench_train.py --quick    # 1 round, fewer rows

Same model (MobileNetV2, random initialisation, 32 px inputs), same data
(random images and labels), same batch size (32) and the same number of
optimisation steps: the bare loop is ``for batch: zero_grad, cross-entropy,
backward, AdamW step`` over a fixed random order; the engine adds its
schedule, clipping, seeded order and book-keeping.  After one warm-up run, rounds
alternate which of the two goes first, so drift of the machine hits both; each figure is the median over
rounds.  Then the engine with a checkpoint every ``CHECKPOINT_EVERY`` steps:
the seconds each checkpoint costs and its size on disk.  Records
(``benchmarks/results/bench_train.json``): ``name``, ``impl`` (``bare_loop``,
``engine``, ``engine_checkpoints``), ``n`` (rows), ``seconds``,
``samples_per_s``, and ``ratio`` (engine over bare loop), ``checkpoint_s``,
``checkpoint_mb``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from transferkit.backbones.mobilenet_v2 import MobileNetV2
from transferkit.deep import Trainer, classification_loss
from transferkit.io import write_atomic

RESULTS = Path(__file__).resolve().parent / "results"
BATCH, SIZE, CHECKPOINT_EVERY = 32, 32, 8


def _model():
    torch.manual_seed(0)
    return MobileNetV2(num_classes=10)


def _data(n):
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, SIZE, SIZE, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def bare_loop(X, y, epochs):
    model = _model().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(epochs):
        for idx in torch.split(torch.randperm(len(X), generator=gen), BATCH):
            opt.zero_grad()
            F.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
    return time.perf_counter() - start


def engine(X, y, epochs, folder=None):
    model = _model()
    trainer = Trainer(epochs=epochs, batch_size=BATCH, learning_rate=1e-3, device="cpu",
                      checkpoint_dir=folder, checkpoint_every=CHECKPOINT_EVERY if folder else None)
    result = trainer.fit(model, classification_loss, (X, y))
    return result.seconds, result.steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default=str(RESULTS / "bench_train.json"))
    parser.add_argument("--md", default=str(RESULTS / "bench_train.md"))
    args = parser.parse_args()
    n, rounds, epochs = (256, 1, 1) if args.quick else (1024, 3, 2)
    X, y = _data(n)
    bare, eng = [], []
    engine(X, y, 1)                       # warm-up: thread pool, allocator
    for i in range(rounds):               # the order alternates between rounds
        for which in ((0, 1) if i % 2 == 0 else (1, 0)):
            if which == 0:
                bare.append(bare_loop(X, y, epochs))
            else:
                eng.append(engine(X, y, epochs)[0])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ckpt"
        seconds, steps = engine(X, y, epochs, folder)
        size = sum(p.stat().st_size for p in folder.iterdir()) / 2 ** 20
    samples = n * epochs
    b, e = statistics.median(bare), statistics.median(eng)
    n_checkpoints = steps // CHECKPOINT_EVERY + epochs
    rows = [
        {"name": "mobilenet_v2_32px", "impl": "bare_loop", "n": n, "seconds": b,
         "samples_per_s": samples / b},
        {"name": "mobilenet_v2_32px", "impl": "engine", "n": n, "seconds": e,
         "samples_per_s": samples / e, "ratio": b / e},
        {"name": "mobilenet_v2_32px", "impl": "engine_checkpoints", "n": n, "seconds": seconds,
         "samples_per_s": samples / seconds, "checkpoints": n_checkpoints,
         "checkpoint_s": max(0.0, seconds - e) / n_checkpoints, "checkpoint_mb": size},
    ]
    lines = ["# bench_train (2 cores; median of alternating rounds)", "",
             "| impl | rows | seconds | samples/s | engine / loop | checkpoint s | checkpoint MB |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['impl']} | {r['n']} | {r['seconds']:.2f} | {r['samples_per_s']:.1f} | "
                     f"{r.get('ratio', float('nan')):.3f} | {r.get('checkpoint_s', float('nan')):.3f} "
                     f"| {r.get('checkpoint_mb', float('nan')):.1f} |")
    print("\n".join(lines))
    write_atomic(Path(args.json), json.dumps(rows, indent=1))
    write_atomic(Path(args.md), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
