"""Benchmark: the fine-tuning family side by side on Fashion-MNIST with few labels.

Run from the repository root::

    python benchmarks/bench_finetune.py            # 10 labels a class, 10,000 test images
    python benchmarks/bench_finetune.py --quick    # 2,000 test images

MobileNetV2 (ImageNet weights, 64 px inputs on CPU), 10 labelled training
images per class (seed 0), every method with its defaults: the linear probe,
partial (last 3 blocks), full (layer-wise rate decay 0.7), L2-SP and LP-FT;
beside them the cheapest strong bar, scikit-learn's logistic regression on
the frozen pooled features (the autopilot's ``linear_probe`` head, C by
3-fold CV), and the same network trained from scratch (BatchNorm trained,
30 epochs, learning rate 3e-3: the best of 1e-3/3e-3/1e-2 measured).  Each
runs in its own process, so ``peak_mb`` is that method's peak resident
memory.  Records (``benchmarks/results/bench_finetune.json``): ``name``
(data set), ``impl`` (method), ``n`` (labelled rows), ``seconds`` (fit),
``predict_seconds``, ``peak_mb``, ``accuracy`` on the test images.
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

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("frozen_logistic", "linear_probe", "partial", "full", "l2sp", "lp_ft", "scratch")
SIZE, PER_CLASS = 64, 10


def _data(n_test):
    from transferkit.datasets import load_fashion_mnist

    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.choice(np.flatnonzero(train.labels == c), PER_CLASS,
                                      replace=False) for c in range(10)])
    return train.images[rows], train.labels[rows], test.images[:n_test], test.labels[:n_test]


def _frozen_logistic(X, y):
    from transferkit.autopilot.builtin_strategies import _logistic_cv
    from transferkit.backbones import FeatureExtractor

    class Model:
        def fit(self, X, y):
            self.extract = FeatureExtractor("mobilenet_v2", backbone_kwargs={"input_size": SIZE})
            self.head = _logistic_cv(Cs=8, cv=3, class_weight="balanced", max_iter=3000,
                                     solver="newton-cg").fit(self.extract.fit_transform(X), y)
            return self

        def predict(self, X):
            return self.head.predict(self.extract.transform(X))
    return Model().fit(X, y)


def child(method: str, n_test: int) -> dict:
    from transferkit.deep.finetune import FineTuneClassifier

    X, y, Xt, yt = _data(n_test)
    start = time.perf_counter()
    if method == "frozen_logistic":
        model = _frozen_logistic(X, y)
    elif method == "scratch":
        model = FineTuneClassifier(
            "mobilenet_v2", method="full", learning_rate=3e-3, head_learning_rate=3e-3,
            layer_decay=1.0, epochs=30, freeze_batchnorm=False, random_state=0,
            backbone_options={"weights": "none", "input_size": SIZE}).fit(X, y)
    else:
        model = FineTuneClassifier("mobilenet_v2", method=method, random_state=0,
                                   backbone_options={"input_size": SIZE}).fit(X, y)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    accuracy = float(np.mean(model.predict(Xt) == yt))
    return {"name": "fashion_mnist_10_per_class", "impl": method, "n": int(len(y)),
            "n_test": int(n_test), "seconds": fit,
            "predict_seconds": time.perf_counter() - start,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "accuracy": accuracy}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", default=None)
    parser.add_argument("--n-test", type=int, default=None)
    parser.add_argument("--json", default=str(RESULTS / "bench_finetune.json"))
    parser.add_argument("--md", default=str(RESULTS / "bench_finetune.md"))
    args = parser.parse_args()
    n_test = args.n_test or (2000 if args.quick else 10_000)
    if args.child:
        print(json.dumps(child(args.child, n_test)))
        return
    from transferkit.io import write_atomic

    rows = []
    for method in METHODS:
        out = subprocess.run([sys.executable, __file__, "--child", method, "--n-test",
                              str(n_test)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{method:16s} fit {r['seconds']:6.1f} s  predict {r['predict_seconds']:5.1f} s  "
              f"{r['peak_mb']:6.0f} MB  accuracy {r['accuracy']:.3f}", flush=True)
    lines = [f"# bench_finetune (Fashion-MNIST, {PER_CLASS} labels a class, {SIZE} px, "
             f"{n_test} test images, 2 cores)", "",
             "| method | fit s | predict s | peak MB | accuracy |", "|---|---|---|---|---|"]
    lines += [f"| {r['impl']} | {r['seconds']:.1f} | {r['predict_seconds']:.1f} | "
              f"{r['peak_mb']:.0f} | {r['accuracy']:.3f} |" for r in rows]
    write_atomic(Path(args.json), json.dumps(rows, indent=1))
    write_atomic(Path(args.md), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
