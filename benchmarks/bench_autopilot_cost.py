"""Benchmark: what the autopilot's run costs, full portfolio against the defaults.

Run from the repository root::

    python benchmarks/bench_autopilot_cost.py            # every task (about 40 minutes)
    python benchmarks/bench_autopilot_cost.py --quick    # tabular_3k and text_384 only
    python benchmarks/bench_autopilot_cost.py --tasks tabular_50k,image_1280

Tasks (50 labelled target rows, 300 unlabelled, a fixed held-out target test
set; balanced accuracy of the shipped model on it is the ``score``):

* ``tabular_3k``: ``credit_job`` of ``bench_autopilot.py`` (real, 3,000
  source rows);
* ``tabular_50k`` and ``tabular_1m``: synthetic, 50,000 and 1,000,000 source
  rows, d=32 (no offline real table has that many rows): source
  :math:`x \\sim N(0, I)`, target shifted by 0.5 in 8 features, label
  :math:`1[w^\\top x + 0.5 \\sin(3 x_0 x_1) + \\varepsilon > 1]` with the
  target's ``w`` rotated a little from the source's;
* ``text_384``: ``drug_text`` of ``bench_autopilot.py`` (real reviews,
  all-MiniLM-L6-v2 embeddings);
* ``image_1280``: Fashion-MNIST (Debian package files), MobileNetV2 ImageNet
  features (1,280-d, 224 px), 10 classes; source = 2,000 training images,
  target = test images at half contrast with Gaussian noise (sd 20 grey
  levels), a sensor change.  Features are cached under ``--cache``.

``impl``: ``full`` = every strategy on every fold, no time budget, every source
row (``Autopilot(time_budget=None, max_source_rows=None)``); ``default`` =
``Autopilot()`` as shipped.  ``full`` is not run on ``tabular_1m`` (17
strategies x 15 folds on a million rows, kernel methods included, do not fit
a laptop; that is what the default's source subsample is for).  Each run is
a fresh Python process (``peak_mb``: the larger of its own peak resident
memory and that of its largest finished worker process).  Records: ``name``, ``impl``, ``n``
(source rows), ``seconds``, ``peak_mb``, ``score``, ``shipped``; written to
``benchmarks/results/bench_autopilot_cost.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from transferkit.domains import stack_domains  # noqa: E402
from transferkit.io import write_atomic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
N_LABELLED, N_UNLABELLED, N_TEST = 50, 300, 1000
TASK_NAMES = ("tabular_3k", "tabular_50k", "tabular_1m", "text_384", "image_1280")
QUICK = ("tabular_3k", "text_384")
NO_FULL = {"tabular_1m": "not run: every strategy on every fold of 1M rows does not fit a laptop"}


def _from_suite(name, seed):
    import bench_autopilot as suite

    task = getattr(suite, name)()
    source, pool, test = suite.split_task(task)
    X, y = suite.draw(task, source, pool, seed)
    return (X, y, task.X.iloc[test].reset_index(drop=True), task.label[test], task.positive,
            task.modality)


def _synthetic(n_source, seed, d=32):
    rng = np.random.default_rng(seed)
    w_source = rng.normal(size=d) / np.sqrt(d)
    w_target = w_source + rng.normal(scale=0.3, size=d) / np.sqrt(d)
    shift = np.r_[np.full(8, 0.5), np.zeros(d - 8)]

    def rows(n, w, mean):
        X = rng.normal(size=(n, d)) + mean
        score = X @ w + 0.5 * np.sin(3 * X[:, 0] * X[:, 1]) + rng.normal(scale=0.5, size=n)
        return X.astype(np.float32), np.where(score > 1.0, "yes", "no")

    Xs, ys = rows(n_source, w_source, 0.0)
    Xt, yt = rows(N_LABELLED + N_UNLABELLED + N_TEST, w_target, shift)
    labels = np.r_[yt[:N_LABELLED], np.full(N_UNLABELLED, None)].astype(object)
    X, y = stack_domains(Xs, ys, Xt[:N_LABELLED + N_UNLABELLED], labels)
    return X, y, Xt[-N_TEST:], yt[-N_TEST:], "yes", "tabular"


def _image(seed, cache):
    from transferkit.backbones.extractor import FeatureExtractor
    from transferkit.datasets import load_fashion_mnist

    rng = np.random.default_rng(seed)
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    source = np.concatenate([rng.choice(np.flatnonzero(train.labels == c), 200, replace=False)
                             for c in range(10)])
    target = rng.permutation(len(test.labels))[:N_LABELLED + N_UNLABELLED + N_TEST]
    # stratified labelled rows: 5 per class first
    order = np.argsort(test.labels[target], kind="stable")
    first = np.concatenate([order[test.labels[target][order] == c][:5] for c in range(10)])
    target = np.r_[target[first], np.delete(target, first)]
    shifted = np.clip(test.images[target] * 0.5 + rng.normal(scale=20, size=(len(target), 28, 28))
                      + 64, 0, 255).astype(np.uint8)
    extractor = FeatureExtractor("mobilenet_v2", device="cpu", cache_dir=cache).fit()
    Fs = extractor.transform(list(train.images[source]))
    Ft = extractor.transform(list(shifted))
    names = np.asarray(train.class_names)
    yt = names[test.labels[target]]
    labels = np.r_[yt[:N_LABELLED], np.full(N_UNLABELLED, None)].astype(object)
    X, y = stack_domains(Fs, names[train.labels[source]], Ft[:N_LABELLED + N_UNLABELLED],
                         labels)
    return X, y, Ft[-N_TEST:], yt[-N_TEST:], None, "image"


def build(name, seed, cache):
    if name == "tabular_3k":
        return _from_suite("credit_job", seed)
    if name == "text_384":
        return _from_suite("drug_text", seed)
    if name == "tabular_50k":
        return _synthetic(50_000, seed)
    if name == "tabular_1m":
        return _synthetic(1_000_000, seed)
    if name == "image_1280":
        return _image(seed, cache)
    raise ValueError(f"unknown task {name!r}; known: {', '.join(TASK_NAMES)}")


def run_one(name, impl, seed, cache) -> dict:
    """One autopilot run in this (fresh) process: seconds, peak memory, held-out score."""
    from transferkit.autopilot import Autopilot
    from transferkit.evaluation import classification_metrics
    from transferkit.domains import read_domains

    X, y, X_test, y_test, positive, modality = build(name, seed, cache)
    settings = {"time_budget": None, "max_source_rows": None} if impl == "full" else {}
    start = time.perf_counter()
    result = Autopilot(random_state=seed, modality=modality, positive_label=positive,
                       **settings).run(X, y)
    seconds = time.perf_counter() - start
    pred = np.asarray(result.model.predict(X_test)).astype(str)
    score = classification_metrics(np.asarray(y_test).astype(str), pred,
                                   positive_label=positive)["balanced_accuracy"]
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return {"name": name, "impl": impl, "seed": seed,
            "n": int((~read_domains(y).is_target).sum()), "seconds": seconds,
            "peak_mb": peak, "score": float(score), "shipped": result.members,
            "source_rows_used": result.timings["source_rows"]["used"],
            "stopped": result.timings["stopped"]}


def markdown(rows) -> str:
    lines = ["| task | impl | n | seconds | peak_mb | score | shipped |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['name']} | {r['impl']} | {r['n']} | - | - | - | {r['skipped']} |")
            continue
        shipped = ", ".join(f"{k} x{v:g}" for k, v in r["shipped"].items())
        lines.append(f"| {r['name']} | {r['impl']} | {r['n']} | {r['seconds']:.1f} | "
                     f"{r['peak_mb']:.0f} | {r['score']:.3f} | {shipped} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--tasks", default=None, help="comma-separated task names")
    parser.add_argument("--impls", default="full,default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=str(Path.home() / ".cache/transferkit/features"),
                        help="feature cache folder of the image task")
    parser.add_argument("--json", default=str(RESULTS / "bench_autopilot_cost.json"))
    parser.add_argument("--md", default=str(RESULTS / "bench_autopilot_cost.md"))
    parser.add_argument("--child", nargs=4, metavar=("TASK", "IMPL", "SEED", "CACHE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        name, impl, seed, cache = args.child
        print(json.dumps(run_one(name, impl, int(seed), cache), default=str))
        return 0
    names = (args.tasks.split(",") if args.tasks else QUICK if args.quick else TASK_NAMES)
    rows = []
    for name in names:
        for impl in args.impls.split(","):
            if impl == "full" and name in NO_FULL:
                rows.append({"name": name, "impl": impl, "n": 1_000_000,
                             "skipped": NO_FULL[name]})
                continue
            child = subprocess.run(
                [sys.executable, __file__, "--child", name, impl, str(args.seed), args.cache],
                capture_output=True, text=True, check=False)
            if child.returncode != 0:
                raise SystemExit(f"{name} {impl} failed:\n{child.stderr[-3000:]}")
            row = json.loads(child.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{name} {impl}: {row['seconds']:.1f} s, {row['peak_mb']:.0f} MB, score "
                  f"{row['score']:.3f}, source rows used {row['source_rows_used']}",
                  file=sys.stderr, flush=True)
            write_atomic(Path(args.json), json.dumps(rows, indent=1, default=str))
    write_atomic(Path(args.json), json.dumps(rows, indent=1, default=str))
    text = markdown(rows)
    print(text)
    write_atomic(Path(args.md), f"# bench_autopilot_cost (2 cores, seed {args.seed})\n\n"
                                f"{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
