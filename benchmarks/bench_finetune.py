"""Benchmark: the fine-tuning family side by side on few labels, images and texts.

Run from the repository root::

    python benchmarks/bench_finetune.py            # both data sets (about 25 minutes)
    python benchmarks/bench_finetune.py --quick    # 2,000 test images, 300 test reviews
    python benchmarks/bench_finetune.py --data drug_reviews

Images (``fashion_mnist``):

MobileNetV2 (ImageNet weights, 64 px inputs on CPU), 10 labelled training
images per class (seed 0), every method with its defaults: the linear probe,
partial (last 3 blocks), full (layer-wise rate decay 0.7), L2-SP and LP-FT;
beside them the cheapest strong bar, scikit-learn's logistic regression on
the frozen pooled features (the autopilot's ``linear_probe`` head, C by
3-fold CV), and the same network trained from scratch (BatchNorm trained,
30 epochs, learning rate 3e-3: the best of 1e-3/3e-3/1e-2 measured).  Each
runs in its own process, so ``peak_mb`` is that method's peak resident
memory.

Texts (``drug_reviews``): the offline all-MiniLM-L6-v2 on the drug reviews,
200 labelled reviews (100 positive, 100 not, seed 0), the others as test,
128 tokens; the frozen-embedding logistic head, the five methods at their text
defaults, and LoRA (rank 8 on query and value).  The figure is balanced
accuracy (the test classes are unbalanced), stored as ``accuracy`` too for one
table.  Records (``benchmarks/results/bench_finetune.json``): ``name``
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
METHODS = {"fashion_mnist": ("frozen_logistic", "linear_probe", "partial", "full", "l2sp",
                               "lp_ft", "scratch"),
           "drug_reviews": ("frozen_logistic", "linear_probe", "partial", "full", "l2sp",
                            "lp_ft", "lora")}
SIZE, PER_CLASS = 64, 10
TEXT_BACKBONE, TOKENS, REVIEWS_PER_CLASS = "all-MiniLM-L6-v2", 128, 100


def _data(n_test):
    from transferkit.datasets import load_fashion_mnist

    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.choice(np.flatnonzero(train.labels == c), PER_CLASS,
                                      replace=False) for c in range(10)])
    return train.images[rows], train.labels[rows], test.images[:n_test], test.labels[:n_test]


def _reviews(n_test):
    from transferkit.datasets import load_drug_reviews

    reviews = load_drug_reviews()
    labels, texts = reviews.rating.to_numpy(), reviews.text.to_numpy()
    rng = np.random.default_rng(0)
    train = np.r_[rng.choice(np.flatnonzero(labels == "positive"), REVIEWS_PER_CLASS,
                             replace=False),
                  rng.choice(np.flatnonzero(labels != "positive"), REVIEWS_PER_CLASS,
                             replace=False)]
    test = np.setdiff1d(np.arange(len(labels)), train)[:n_test]
    return list(texts[train]), labels[train], list(texts[test]), labels[test]


def _frozen_logistic(X, y, backbone, options):
    from transferkit.autopilot.builtin_strategies import _logistic_cv
    from transferkit.backbones import FeatureExtractor

    class Model:
        def fit(self, X, y):
            self.extract = FeatureExtractor(backbone, backbone_kwargs=options)
            self.head = _logistic_cv(Cs=8, cv=3, class_weight="balanced", max_iter=3000,
                                     solver="newton-cg").fit(self.extract.fit_transform(X), y)
            return self

        def predict(self, X):
            return self.head.predict(self.extract.transform(X))
    return Model().fit(X, y)


def child(data: str, method: str, n_test: int) -> dict:
    from sklearn.metrics import balanced_accuracy_score

    from transferkit.deep.finetune import FineTuneClassifier

    text = data == "drug_reviews"
    X, y, Xt, yt = _reviews(n_test) if text else _data(n_test)
    backbone, options = ((TEXT_BACKBONE, {"max_length": TOKENS}) if text
                         else ("mobilenet_v2", {"input_size": SIZE}))
    start = time.perf_counter()
    if method == "frozen_logistic":
        model = _frozen_logistic(X, y, backbone, options)
    elif method == "scratch":
        model = FineTuneClassifier(
            "mobilenet_v2", method="full", learning_rate=3e-3, head_learning_rate=3e-3,
            layer_decay=1.0, epochs=30, freeze_batchnorm=False, random_state=0,
            backbone_options={"weights": "none", "input_size": SIZE}).fit(X, y)
    else:
        model = FineTuneClassifier(backbone, method=method, random_state=0,
                                   backbone_options=options).fit(X, y)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    pred = model.predict(Xt)
    accuracy = float(balanced_accuracy_score(yt, pred) if text else np.mean(pred == yt))
    name = "drug_reviews_200" if text else "fashion_mnist_10_per_class"
    return {"name": name, "impl": method, "n": int(len(y)),
            "n_test": int(len(yt)), "seconds": fit,
            "predict_seconds": time.perf_counter() - start,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "accuracy": accuracy}


NAMES = {"fashion_mnist": "fashion_mnist_10_per_class", "drug_reviews": "drug_reviews_200"}
TITLES = {"fashion_mnist": f"Fashion-MNIST, {PER_CLASS} labels a class, {SIZE} px, accuracy",
          "drug_reviews": f"drug reviews, {2 * REVIEWS_PER_CLASS} labelled, {TOKENS} tokens, "
                          f"balanced accuracy"}


def _table(data, rows) -> list:
    rows = [r for r in rows if r["name"] == NAMES[data]]
    if not rows:
        return []
    lines = [f"## {TITLES[data]} ({rows[0]['n_test']} test rows, 2 cores)", "",
             "| method | fit s | predict s | peak MB | score |", "|---|---|---|---|---|"]
    return lines + [f"| {r['impl']} | {r['seconds']:.1f} | {r['predict_seconds']:.1f} | "
                    f"{r['peak_mb']:.0f} | {r['accuracy']:.3f} |" for r in rows] + [""]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data", choices=("all", *METHODS), default="all")
    parser.add_argument("--child", default=None, help="DATA:METHOD (internal)")
    parser.add_argument("--n-test", type=int, default=None)
    parser.add_argument("--json", default=str(RESULTS / "bench_finetune.json"))
    parser.add_argument("--md", default=str(RESULTS / "bench_finetune.md"))
    args = parser.parse_args()
    if args.child:
        data, method = args.child.split(":")
        print(json.dumps(child(data, method, args.n_test)))
        return
    from transferkit.io import write_atomic

    chosen = tuple(METHODS) if args.data == "all" else (args.data,)
    path = Path(args.json)
    # rows of the data sets not run now are kept from the last run
    kept = [r for r in (json.loads(path.read_text()) if path.exists() else [])
            if r.get("name") not in {NAMES[d] for d in chosen}]
    rows = []
    for data in chosen:
        n_test = args.n_test or {"fashion_mnist": 2000 if args.quick else 10_000,
                                 "drug_reviews": 300 if args.quick else 10_000}[data]
        for method in METHODS[data]:
            out = subprocess.run([sys.executable, __file__, "--child", f"{data}:{method}",
                                  "--n-test", str(n_test)], capture_output=True, text=True,
                                 check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"{data:14s} {method:16s} fit {r['seconds']:6.1f} s  predict "
                  f"{r['predict_seconds']:5.1f} s  {r['peak_mb']:6.0f} MB  score "
                  f"{r['accuracy']:.3f}", flush=True)
    rows = kept + rows
    lines = ["# bench_finetune", ""]
    for data in METHODS:
        lines += _table(data, rows)
    write_atomic(path, json.dumps(rows, indent=1))
    write_atomic(Path(args.md), "\n".join(lines))


if __name__ == "__main__":
    main()
