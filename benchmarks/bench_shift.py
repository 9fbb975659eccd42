"""Benchmark: MMD permutation test, transferkit (blocked) vs naive.

Run from the repository root::

    python benchmarks/bench_shift.py           # n = 10,000 per sample, d = 128, 1,000 permutations
    python benchmarks/bench_shift.py --quick   # n = 2,000, d = 32, 200 permutations

Measurements (each in a fresh subprocess, so ``peak_mb`` -- the process's
peak resident memory, ``ru_maxrss``, interpreter and input data included --
belongs to that measurement alone):

* ``mmd_test`` (transferkit): Gaussian kernel, median heuristic, unbiased
  estimator, default ``dtype`` (float32 blocks at this size);
* ``mmd_test_float64`` (transferkit): the same with ``dtype=np.float64``;
* ``naive_full_kernel``: for every permutation, build the full pooled
  (N x N) float64 kernel matrix with ``sklearn.metrics.pairwise.rbf_kernel``
  and sum its blocks.  Only 3 permutations are timed (plus the observed
  statistic); ``seconds`` is the time extrapolated to all permutations
  (``extrapolated_from`` says so).  Its observed statistic is the float64
  reference for the float32 one.

Data: X ~ N(0, I_d); Y ~ N(0, I_d) with the first 8 coordinates shifted by
0.05 (a small shift, so the statistic is not zero); seed 0.

Writes ``benchmarks/results/bench_shift.json`` (a list of records).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "bench_shift.json"
NAIVE_TIMED_PERMUTATIONS = 3


def make_data(n: int, d: int):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, d))
    Y[:, : min(8, d)] += 0.05
    return X, Y


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def naive_unbiased(K: np.ndarray, m: int) -> float:
    n = K.shape[0] - m
    kxx, kyy, kxy = K[:m, :m], K[m:, m:], K[:m, m:]
    s_xx = kxx.sum() - np.trace(kxx)
    s_yy = kyy.sum() - np.trace(kyy)
    return s_xx / (m * (m - 1)) + s_yy / (n * (n - 1)) - 2.0 * kxy.sum() / (m * n)


def worker(spec: dict) -> dict:
    X, Y = make_data(spec["n"], spec["d"])
    baseline = rss_mb()
    record = {
        "name": spec["name"], "impl": spec["impl"], "n": spec["n"], "n_source": spec["n"],
        "n_target": spec["n"], "d": spec["d"], "n_permutations": spec["n_permutations"],
        "kernel": "gaussian", "estimator": "unbiased",
    }
    if spec["impl"] == "transferkit":
        from transferkit.shift import mmd_test
        from transferkit.shift.mmd import FLOAT32_MIN_ROWS

        dtype = {"auto": None, "float64": np.float64}[spec["dtype"]]
        start, cpu = time.perf_counter(), time.process_time()
        result = mmd_test(X, Y, kernel="gaussian", n_permutations=spec["n_permutations"],
                          random_state=0, dtype=dtype)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        used = "float32" if dtype is None and 2 * spec["n"] > FLOAT32_MIN_ROWS else "float64"
        record.update(seconds=seconds, cpu_seconds=cpu, statistic=result.statistic,
                      p_value=result.p_value, bandwidth=result.bandwidth, dtype=used)
    else:
        from sklearn.metrics.pairwise import rbf_kernel

        from transferkit.shift import median_heuristic

        Z = np.vstack([X, Y])
        m = X.shape[0]
        bandwidth = median_heuristic(Z, random_state=0)
        gamma = 1.0 / (2.0 * bandwidth**2)
        rng = np.random.RandomState(0)
        start, cpu = time.perf_counter(), time.process_time()
        observed = naive_unbiased(rbf_kernel(Z, gamma=gamma), m)
        t_observed, cpu_observed = time.perf_counter() - start, time.process_time() - cpu
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(NAIVE_TIMED_PERMUTATIONS):
            perm = rng.permutation(Z.shape[0])
            naive_unbiased(rbf_kernel(Z[perm], gamma=gamma), m)
        per_perm = (time.perf_counter() - start) / NAIVE_TIMED_PERMUTATIONS
        cpu_per_perm = (time.process_time() - cpu) / NAIVE_TIMED_PERMUTATIONS
        record.update(
            seconds=t_observed + per_perm * spec["n_permutations"],
            cpu_seconds=cpu_observed + cpu_per_perm * spec["n_permutations"],
            seconds_per_permutation=per_perm,
            extrapolated_from=NAIVE_TIMED_PERMUTATIONS,
            statistic=float(observed), p_value=None, bandwidth=bandwidth, dtype="float64",
        )
    record.update(peak_mb=rss_mb(), baseline_mb=baseline,
                  load_average_1min=os.getloadavg()[0])
    return record


def run_in_subprocess(spec: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller problem (seconds)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    n, d, n_perm = (2000, 32, 200) if args.quick else (10_000, 128, 1000)
    specs = [
        {"name": "mmd_test", "impl": "transferkit", "dtype": "auto"},
        {"name": "mmd_test_float64", "impl": "transferkit", "dtype": "float64"},
        {"name": "naive_full_kernel", "impl": "naive", "dtype": "float64"},
    ]
    machine = {"cpu_count": os.cpu_count(), "python": platform.python_version(),
               "numpy": np.__version__, "quick": bool(args.quick)}
    records = []
    for spec in specs:
        spec.update(n=n, d=d, n_permutations=n_perm)
        print(f"running {spec['name']} ({spec['impl']}) ...", flush=True)
        record = run_in_subprocess(spec)
        record.update(machine)
        records.append(record)

    reference = next(r["statistic"] for r in records if r["impl"] == "naive")
    for record in records:
        record["statistic_rel_diff_vs_naive_float64"] = (
            abs(record["statistic"] - reference) / abs(reference)
        )

    header = (f"{'name':<20}{'impl':<13}{'n':>7}{'d':>5}{'perms':>7}{'seconds':>11}"
              f"{'peak_mb':>10}{'statistic':>14}{'p_value':>10}  note")
    print(header)
    print("-" * len(header))
    for r in records:
        note = (f"extrapolated from {r['extrapolated_from']} permutations"
                if "extrapolated_from" in r else f"{r['dtype']} blocks")
        p_value = "-" if r["p_value"] is None else f"{r['p_value']:.4f}"
        print(f"{r['name']:<20}{r['impl']:<13}{r['n']:>7}{r['d']:>5}{r['n_permutations']:>7}"
              f"{r['seconds']:>11.2f}{r['peak_mb']:>10.0f}{r['statistic']:>14.6e}{p_value:>10}"
              f"  {note}")
    fast = records[0]["seconds"]
    naive = next(r["seconds"] for r in records if r["impl"] == "naive")
    print(f"speed-up of mmd_test over the naive approach: {naive / fast:,.0f}x; "
          f"its statistic ({records[0]['dtype']} blocks) differs from the naive float64 one "
          f"by (relative) "
          f"{records[0]['statistic_rel_diff_vs_naive_float64']:.1e}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(records, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    main()
