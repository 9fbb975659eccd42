"""Benchmark: the autopilot with its defaults on a text task file and on image folders.

Run from the repository root::

    python benchmarks/bench_autopilot_finetune.py                # both tasks (about 25 minutes)
    python benchmarks/bench_autopilot_finetune.py --tasks text

Each task is written to a temporary folder as a user would lay it out, and
run with ``transferkit run TASK --json --quiet`` (every default: the strategy
portfolio, the 10-minute run budget, 4 minutes per strategy, 5 x 3 folds),
then ``transferkit predict`` scores the shipped model on the held-out target
rows from their raw texts or image paths.

* ``text``: drug reviews (``label`` positive or not), all-MiniLM-L6-v2; source
  = the five largest conditions, target = the rest: 50 labelled reviews, 200
  unlabelled (empty label cell), the other target reviews as test.
* ``image``: Fashion-MNIST folders (one sub-folder per class), 4 classes
  (t-shirt, trouser, sneaker, bag), MobileNetV2: source = 50 upright images a
  class from the training set, target = inverted images (a negative
  acquisition), 10 labelled a class from the training set, test = 200 inverted
  test images a class.

Records (``benchmarks/results/bench_autopilot_finetune.json``): ``name``,
``seconds`` (the whole ``transferkit run``, feature extraction included),
``time_budget``, ``within_budget``, ``recommended``, ``verdict``, the
leaderboard (strategy, mean score, seconds, ``budget_stops``),
``fine_tuning_on_board``, ``heldout`` (balanced accuracy of the shipped model
on the test rows) and ``n_test``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
FINE_TUNING = ("finetune_lp_ft", "finetune_source_then_target")
CLASSES = {0: "tshirt", 1: "trouser", 7: "sneaker", 8: "bag"}


def text_task(root: Path):
    """Task file + test table for the drug reviews; returns (task file, test csv, labels)."""
    from transferkit.datasets import load_drug_reviews

    reviews = load_drug_reviews().reset_index(drop=True)
    label = np.where(reviews["rating"].to_numpy() == "positive", "positive", "other")
    frame = pd.DataFrame({"text": reviews["text"], "label": label})
    largest = reviews["condition"].value_counts().index[:5]
    is_source = reviews["condition"].isin(largest).to_numpy()
    target = np.random.default_rng(0).permutation(np.flatnonzero(~is_source))
    labelled, unlabelled, test = target[:50], target[50:250], target[250:]
    frame[is_source].to_csv(root / "source.csv", index=False)
    rows = frame.iloc[np.r_[labelled, unlabelled]].copy()
    rows.loc[rows.index[50:], "label"] = None
    rows.to_csv(root / "target.csv", index=False)
    frame.iloc[test][["text"]].to_csv(root / "test.csv", index=False)
    (root / "task.yaml").write_text(
        "sources: {large_conditions: source.csv}\ntarget: target.csv\nlabel: label\n"
        "text_column: text\npositive_label: positive\noutput: out\ncache_dir: cache\n")
    return root / "task.yaml", root / "test.csv", label[test]


def image_task(root: Path):
    """Image folders + test table of paths; returns (task file, test csv, labels)."""
    from PIL import Image

    from transferkit.datasets import load_fashion_mnist

    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    rng = np.random.default_rng(0)
    paths, truth = [], []
    for code, name in CLASSES.items():
        rows = rng.permutation(np.flatnonzero(train.labels == code))
        for domain, picks, invert in (("source", rows[:50], False), ("target", rows[50:60], True)):
            folder = root / domain / name
            folder.mkdir(parents=True)
            for k, i in enumerate(picks):
                Image.fromarray(255 - train.images[i] if invert else train.images[i]).save(
                    folder / f"{k}.png")
        folder = root / "test" / name
        folder.mkdir(parents=True)
        for k, i in enumerate(np.flatnonzero(test.labels == code)[:200]):
            Image.fromarray(255 - test.images[i]).save(folder / f"{k}.png")
            paths.append(str(folder / f"{k}.png"))
            truth.append(name)
    pd.DataFrame({"image": paths}).to_csv(root / "test.csv", index=False)
    (root / "task.yaml").write_text(
        "sources: {upright: source}\ntarget: target\noutput: out\ncache_dir: cache\n")
    return root / "task.yaml", root / "test.csv", np.asarray(truth)


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transferkit.cli", *map(str, args)],
                          capture_output=True, text=True, check=True)


def run_task(name: str, build) -> dict:
    from sklearn.metrics import balanced_accuracy_score

    from transferkit.autopilot.budget import DEFAULT_TIME_BUDGET

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        task_file, test_csv, truth = build(root)
        start = time.perf_counter()
        payload = json.loads(cli("run", task_file, "--json", "--quiet").stdout)
        seconds = time.perf_counter() - start
        cli("predict", root / "out" / "model", test_csv, "--output", root / "pred.csv")
        pred = pd.read_csv(root / "pred.csv")["prediction"].astype(str).to_numpy()
    metric = payload["metric"]
    board = [{"strategy": r["strategy"], "score": r.get(f"{metric}_mean"),
              "seconds": r.get("seconds"), "budget_stops": r.get("budget_stops")}
             for r in payload["leaderboard"]]
    return {"name": name, "seconds": seconds, "time_budget": DEFAULT_TIME_BUDGET,
            "within_budget": bool(payload["seconds"] <= DEFAULT_TIME_BUDGET * 1.05),
            "autopilot_seconds": payload["seconds"], "recommended": payload["recommended"],
            "verdict": payload["verdict"], "notes": payload["notes"], "leaderboard": board,
            "fine_tuning_on_board": [r["strategy"] for r in board
                                     if r["strategy"] in FINE_TUNING],
            "heldout": float(balanced_accuracy_score(truth, pred)), "n_test": int(len(truth))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="text,image")
    parser.add_argument("--json", default=str(RESULTS / "bench_autopilot_finetune.json"))
    parser.add_argument("--md", default=str(RESULTS / "bench_autopilot_finetune.md"))
    args = parser.parse_args()
    from transferkit.io import write_atomic

    builders = {"text": text_task, "image": image_task}
    rows = []
    for name in args.tasks.split(","):
        rows.append(run_task(name, builders[name]))
        r = rows[-1]
        print(f"{name}: {r['seconds']:.0f} s (autopilot {r['autopilot_seconds']:.0f} s of "
              f"{r['time_budget']:.0f}), fine-tuning on the board: "
              f"{r['fine_tuning_on_board']}, shipped {r['recommended']}, held-out "
              f"{r['heldout']:.3f}", flush=True)
    lines = ["# bench_autopilot_finetune (defaults, 2 cores)", ""]
    for r in rows:
        lines += [f"## {r['name']}: {r['seconds']:.0f} s in all, autopilot "
                  f"{r['autopilot_seconds']:.0f} s (budget {r['time_budget']:.0f} s); shipped "
                  f"{r['recommended']}, held-out balanced accuracy {r['heldout']:.3f} on "
                  f"{r['n_test']} rows", "", r["verdict"], "",
                  "| strategy | CV score | seconds | budget stops |", "|---|---|---|---|"]
        lines += [f"| {b['strategy']} | {b['score'] if b['score'] is None else round(b['score'], 3)}"
                  f" | {b['seconds'] if b['seconds'] is None else round(b['seconds'], 1)} | "
                  f"{b['budget_stops']} |" for b in r["leaderboard"]]
        lines += [""] + [f"- {n}" for n in r["notes"]] + [""]
    write_atomic(Path(args.json), json.dumps(rows, indent=1, default=str))
    write_atomic(Path(args.md), "\n".join(lines))


if __name__ == "__main__":
    main()
