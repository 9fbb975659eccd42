"""Benchmark: transferkit's transfer methods against skada and ADAPT, same data, same run.

Run from the repository root::

    python benchmarks/bench_methods.py                  # n = 2,000 and 8,000 (all impls)
                                                        # + transferkit alone at n = 100,000
    python benchmarks/bench_methods.py --quick          # n = 1,000, d = 16 (a few minutes)
    python benchmarks/bench_methods.py --methods kmm,tca --sizes 2000,8000
    python benchmarks/bench_methods.py --no-peers       # transferkit only, no peer venv
    python benchmarks/bench_methods.py --impls skada,adapt --update   # merge into the JSON

Methods: KMM, KLIEP, uLSIF, CORAL, SA (subspace alignment), TCA, TrAdaBoost,
plus a ``source_only`` reference (no adaptation, impl ``baseline``).

The peers
---------
skada 0.6.0 and ADAPT 0.4.5 are installed from PyPI into a *separate*
virtual environment that this script makes itself (default
``benchmarks/.peers-venv``; made with ``python -m venv``; reused when it
exists and ``import skada, adapt`` works there).  Nothing is added to the
project's environment or dependencies.  ADAPT imports TensorFlow at top
level, so pip pulls ``tensorflow`` (CPU use only here) into that venv; no
torch is needed (skada's non-deep part does not import it).

Peer settings (kernel methods use the Gaussian kernel with scikit-learn's
default width ``gamma = 1/d`` in every implementation):

=========== ========================================== =============================================
method      skada 0.6.0                                ADAPT 0.4.5
=========== ========================================== =============================================
kmm         ``KMMReweightAdapter()`` defaults: rbf,    ``KMM(kernel="rbf", max_size=n_source)``:
            B=1000, eps=(sqrt(n)-1)/sqrt(n),           the exact QP (cvxopt) on all source rows
            Frank-Wolfe, max_iter=1000, tol=1e-6       (variant ``exact``); also ADAPT's default
                                                       ``max_size=1000`` (variant ``batched``: QP
                                                       on random source batches of <= 1,000 rows)
kliep       ``KLIEPReweightAdapter(gamma=1/d,          ``KLIEP(kernel="rbf")`` defaults: 100
            n_centers=100, random_state=0)``           centres, Frank-Wolfe ("FW"), no CV (1 gamma)
ulsif       not in skada (status ``n/a``)              ``ULSIF(kernel="rbf", lambdas=1.0,
                                                       max_centers=100)`` defaults
coral       ``CORALAdapter()`` defaults (Ledoit-Wolf   ``CORAL()`` defaults (lambda_=1e-5, no
            shrinkage, centres each domain)            centring)
sa          ``SubspaceAlignmentAdapter(n_components=   ``SA(n_components=20)``
            20, random_state=0)``
tca         ``TransferComponentAnalysisAdapter(        ``TCA(n_components=20, mu=0.1,
            n_components=20, mu=0.1)``, rbf            kernel="rbf")``
tradaboost  not in skada (status ``n/a``)              ``TrAdaBoost(LogisticRegression(max_iter=
                                                       1000), n_estimators=10, lr=1.0)``
=========== ========================================== =============================================

transferkit runs in up to three variants (field ``variant``):

* ``default``: its own defaults (e.g. the median-heuristic bandwidth, the
  automatic exact/approximate switch), except ``n_components=20`` for SA/TCA,
  ``n_estimators=10`` and the same logistic-regression base learner for
  TrAdaBoost, and ``random_state=0``;
* ``matched`` (kernel methods): the peers' hyper-parameters where transferkit
  has the same one: Gaussian kernel with ``gamma = 1/d`` (bandwidth
  ``sqrt(d/2)``, no bandwidth search), KMM ``B=1000``, 100 centres for
  KLIEP/uLSIF, uLSIF ``reg=1`` (ADAPT's ``lambdas=1``), TCA ``mu=10``
  (skada/ADAPT solve ``(I + mu KLK)^-1 KHK`` with ``mu=0.1``; transferkit
  solves the paper's ``(KLK + mu I)^-1 KHK``, which has the same
  eigenvectors for ``mu = 1/0.1``);
* ``exact`` (KMM, TCA): ``matched`` plus ``solver="exact"`` (KMM) or
  ``method="exact"`` (TCA), i.e. no landmark/Nystroem approximation: the
  reference for the approximation's accuracy; not run at the large size.

The peers' KLIEP and uLSIF also run in a variant ``search``: transferkit's
default model selection handed to the peer, i.e. the Gaussian widths
``median x (0.25, 0.5, 1, 2, 4)`` (the median heuristic of the pooled rows,
computed by transferkit in the parent process) with 5-fold likelihood
cross-validation (KLIEP), and for ADAPT's uLSIF also the ridges
``(1e-3, 1e-2, 1e-1, 1)`` (its leave-one-out search).  transferkit
``default`` against the peers' ``search``, and transferkit ``matched``
against the peers' ``default``, compare the same work (the "same work"
table).

Only parameters that the constructor has are passed; the record's ``params``
field lists what was passed.

Data (identical for every implementation)
-----------------------------------------
A synthetic covariate-shift task, made deterministically from ``--seed``
(default 0) and saved once per size to an ``.npz`` file in a temporary
folder that every measurement subprocess loads:

* source rows ``x ~ N(0, I_d)``; target rows ``x ~ N(mu, 0.9^2 I_d)`` with
  ``mu = 0.7`` on the first 4 coordinates and 0 elsewhere;
* the same labelling rule in both domains (so ``p(y|x)`` is shared):
  ``y = 1[x.w + (sum_{j<4} x_j^2 - 4)/2 + 0.25 e > 0]`` with ``w`` a fixed
  random unit vector and ``e ~ N(0, 1)``; the quadratic part makes the best
  *linear* classifier differ between the domains, so importance weighting
  can help;
* ``n_source = n_target = n`` training rows, plus 2,000 held-out labelled
  target rows (``n_test``) on which accuracy is measured;
* TrAdaBoost (which needs target labels) sees the labels of the first 5% of
  the target training rows, in every implementation; all other methods see
  no target label.

Protocol
--------
Each measurement runs in a fresh subprocess (the peers' with the peer venv's
python) with ``OMP/OPENBLAS/MKL_NUM_THREADS=2`` (the machine's 2 cores).
Timed (``seconds``, wall clock; ``cpu_seconds``, user + system CPU of all
threads): the method, i.e. its fit and the source weights, or its fit and the
mapping of the source and the test rows (TrAdaBoost: its fit).  Imports and
data loading are not timed.  The method is repeated back to back
(``--repeats``, default 15, each time with a new estimator; no further
repetition once the next would take the total past ``--repeat-budget``
seconds, default 20) and the median is reported (``seconds_each`` keeps every
run): sub-second timings of a single run were dominated by first-call costs
and by noise from other processes.  When the first run takes under a second
it is a warm-up (``warm_up_seconds``), not counted: in a fresh process the
first runs also pay for lazy imports and for the allocator's first page
faults, a cost of the process rather than of the method, and largest for the
quickest methods.  Measurements under a second are taken in ``--processes`` (default 3) fresh
processes and the median of their medians is reported (see :func:`measure`).
The downstream classifier then runs once, on the last
repetition's weights or mapped rows (``classifier_seconds``: its fit and
prediction; TrAdaBoost: its prediction).  It is the same work for every
implementation and is kept out of the repetitions: run between them, its
idle OpenMP/BLAS threads (which spin-wait for a while after their work)
slowed the next method run by up to 2x (CORAL, n = 8,000: 10 ms back to
back, 15-22 ms with the classifier in between), noise larger than the
differences being measured.

Downstream classifier (the same for all): ``StandardScaler`` fitted on the
(mapped) source rows, then ``LogisticRegression(max_iter=1000)`` fitted on
them; instance methods pass the source weights, clipped at 0 and rescaled to mean 1, as
``sample_weight``.  Feature methods map the test rows as target rows.
``accuracy`` = accuracy on the 2,000 held-out target rows.  For KLIEP the
record also has ``heldout_loglik``: the held-out target log-likelihood of the
fitted ratio (see :func:`heldout_log_likelihood`), which tells a solved KLIEP
from one that stopped early.

Memory: ``peak_mb`` is the subprocess's peak resident memory
(``VmHWM``), interpreter, imports (TensorFlow for ADAPT) and data
included; ``extra_mb`` is ``peak_mb`` minus the peak measured just before the
timed section, i.e. the memory the method itself added.  Compare methods on
``extra_mb``.

Limits: each measurement is stopped after ``--timeout`` seconds (default
300) -> status ``timeout``, or when the parent sees its resident memory pass
``--mem-limit-mb`` (default 8,000) -> status ``oom``.  At the large size
(``--large-n``, default 100,000, d = 64) only transferkit runs unless
``--large-peers`` is given.

Outputs: ``benchmarks/results/bench_methods.json`` (a list of records:
``name, impl, variant, n, n_source, n_target, n_test, d, seconds,
cpu_seconds, classifier_seconds, peak_mb, extra_mb, accuracy, status, params,
...``) and
``benchmarks/results/bench_methods.md`` (the table, also printed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS_JSON = HERE / "results" / "bench_methods.json"
RESULTS_MD = HERE / "results" / "bench_methods.md"
DEFAULT_VENV = HERE / ".peers-venv"
PEER_PACKAGES = ["skada==0.6.0", "adapt==0.4.5"]

METHODS = ["kmm", "kliep", "ulsif", "coral", "sa", "tca", "tradaboost"]
INSTANCE = {"kmm", "kliep", "ulsif"}
FEATURE = {"coral", "sa", "tca"}
N_COMPONENTS = 20  # SA and TCA; capped at d (so --quick's d = 16 uses 16)
N_ESTIMATORS = 10
N_TEST = 2000
WARM_UP_BELOW_S = 1.0  # a quicker first run is a warm-up: run again, time the repetitions
IDLE_THREADS_S = 0.5  # pause before the timed runs (see worker)
QUICK_S = 1.0  # a measurement quicker than this is repeated in fresh processes (see measure)
LABELLED_TARGET_FRACTION = 0.05

# (method, impl) -> variants; a missing entry means the peer has no such method.
PEER_VARIANTS = {
    ("kmm", "skada"): ["default"], ("kmm", "adapt"): ["exact", "batched"],
    ("kliep", "skada"): ["default", "search"], ("kliep", "adapt"): ["default", "search"],
    ("ulsif", "adapt"): ["default", "search"],
    ("coral", "skada"): ["default"], ("coral", "adapt"): ["default"],
    ("sa", "skada"): ["default"], ("sa", "adapt"): ["default"],
    ("tca", "skada"): ["default"], ("tca", "adapt"): ["default"],
    ("tradaboost", "adapt"): ["default"],
}

# transferkit: where each method lives (module, class name).
TRANSFERKIT = {
    "kmm": ("transferkit.instance_based", "KMM"),
    "kliep": ("transferkit.instance_based", "KLIEP"),
    "ulsif": ("transferkit.instance_based", "ULSIF"),
    "coral": ("transferkit.feature_based", "CORAL"),
    "sa": ("transferkit.feature_based", "SubspaceAlignment"),
    "tca": ("transferkit.feature_based", "TCA"),
    "tradaboost": ("transferkit.instance_based.tradaboost", "TrAdaBoostClassifier"),
}


# transferkit variants: "default" (its own defaults, e.g. the median-heuristic
# bandwidth) and, for the kernel methods, "matched" (the peers' kernel width
# gamma = 1/d, i.e. bandwidth sqrt(d/2) for exp(-|x-x'|^2 / (2 bandwidth^2)),
# and the peers' other hyper-parameters where transferkit has the same one).
# "exact" = "matched" plus method="exact" (no landmark/Nystroem approximation),
# run at the small sizes only (not at --large-n).
TK_VARIANTS = {"kmm": ["default", "matched", "exact"], "kliep": ["default", "matched"],
               "ulsif": ["default", "matched"], "tca": ["default", "matched", "exact"]}


def _matched_params(method: str, d: int) -> dict:
    params = {"kernel": "gaussian", "bandwidth": float(np.sqrt(d / 2.0))}
    if method == "tca":
        # skada/ADAPT solve (I + mu K L K)^-1 K H K with mu = 0.1; transferkit solves the
        # paper's (K L K + mu I)^-1 K H K: the same eigenvectors for mu = 1 / 0.1.
        params["mu"] = 10.0
    if method == "kmm":
        params["B"] = 1000.0
    if method in ("kliep", "ulsif"):
        params["n_centres"] = 100
    if method == "ulsif":
        params["reg"] = 1.0  # ADAPT's ULSIF lambdas=1.0
    return params


# --------------------------------------------------------------------------- data
def make_data(n: int, d: int, seed: int = 0, n_test: int = N_TEST) -> dict:
    """The covariate-shift task described in the module docstring."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    k = min(4, d)
    mu = np.zeros(d)
    mu[:k] = 0.7
    scale = 0.9

    def label(X):
        f = X @ w + ((X[:, :k] ** 2).sum(axis=1) - k) / np.sqrt(k)
        return (f + 0.25 * rng.standard_normal(len(X)) > 0).astype(np.int64)

    Xs = rng.standard_normal((n, d))
    Xt = mu + scale * rng.standard_normal((n, d))
    Xte = mu + scale * rng.standard_normal((n_test, d))
    n_lab = max(2, int(round(LABELLED_TARGET_FRACTION * n)))
    labelled = np.zeros(n, dtype=bool)
    labelled[:n_lab] = True
    return {"Xs": Xs, "ys": label(Xs), "Xt": Xt, "yt": label(Xt), "Xte": Xte,
            "yte": label(Xte), "target_labelled": labelled}


def search_grid(data: dict) -> dict:
    """transferkit's default model-selection grid on this data (for the peers' ``search``).

    Computed with transferkit itself in the parent process (the peer venv does not have
    it): the median-heuristic bandwidth of the pooled rows and the two default grids.
    """
    from transferkit.instance_based.density_ratio import BANDWIDTH_GRID, REG_GRID
    from transferkit.shift.kernels import median_heuristic

    return {"median": median_heuristic(data["Xs"], data["Xt"], random_state=0),
            "bandwidth_grid": list(BANDWIDTH_GRID), "reg_grid": list(REG_GRID)}


# --------------------------------------------------------------------------- worker
def rss_mb() -> float:
    """This process's peak resident memory (MB) since it started its program.

    ``VmHWM`` from ``/proc/self/status`` (Linux): ``ru_maxrss`` would also count
    the parent's resident memory at the fork, which Linux carries across exec.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def _mean_one(w) -> np.ndarray:
    w = np.clip(np.asarray(w, dtype=np.float64).ravel(), 0.0, None)
    total = w.sum()
    return w * (len(w) / total) if total > 0 else np.ones_like(w)


def _downstream(Zs, ys, Zte, weights=None):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(Zs)
    clf = LogisticRegression(max_iter=1000)
    clf.fit(scaler.transform(Zs), ys, sample_weight=weights)
    return clf.predict(scaler.transform(Zte))


def _accepts(cls, params: dict) -> dict:
    import inspect

    names = set(inspect.signature(cls.__init__).parameters)
    return {k: v for k, v in params.items() if k in names}


def _prepare_transferkit(method, D, d, variant):
    """Import and build; return (params, run, ratio) with run() -> finish (see worker)."""
    import importlib

    from sklearn.linear_model import LogisticRegression

    from transferkit import stack_domains

    module_name, cls_name = TRANSFERKIT[method]
    cls = getattr(importlib.import_module(module_name), cls_name)
    Xs, ys, Xt, Xte = D["Xs"], D["ys"], D["Xt"], D["Xte"]
    ns = len(Xs)
    wanted = {"random_state": 0}
    if method in ("sa", "tca"):
        wanted["n_components"] = min(N_COMPONENTS, d)
    if method == "tradaboost":
        wanted["n_estimators"] = N_ESTIMATORS
        wanted["estimator"] = LogisticRegression(max_iter=1000)
    if variant in ("matched", "exact"):
        wanted.update(_matched_params(method, d))
    if variant == "exact":
        wanted["method"] = wanted["solver"] = "exact"
    params = _accepts(cls, wanted)
    if method == "tradaboost":
        yt = np.where(D["target_labelled"], D["yt"].astype(object), None)
    else:
        yt = None
    X, y = stack_domains(Xs, ys, Xt, yt)
    shown = {k: (repr(v) if k == "estimator" else v) for k, v in params.items()}

    fitted = {}

    def run():
        est = fitted["est"] = cls(**params)
        if method in INSTANCE:
            est.fit(X, y)
            w = _mean_one(np.asarray(est.weights_)[:ns])
            return lambda: _downstream(Xs, ys, Xte, w)
        if method in FEATURE:
            Z = np.asarray(est.fit_transform(X, y))
            Zs, Zte = Z[:ns], np.asarray(est.transform(Xte))
            return lambda: _downstream(Zs, ys, Zte)
        est.fit(X, y)
        return lambda: np.asarray(est.predict(Xte))

    def ratio(X):  # the fitted density ratio at new rows (KLIEP)
        return fitted["est"].compute_weights(X)

    return shown, run, (ratio if method == "kliep" else None)


def _search_gammas(search: dict) -> list:
    """Gaussian ``gamma = 1 / (2 sigma^2)`` for transferkit's bandwidth grid x its median."""
    return [1.0 / (2.0 * (search["median"] * m) ** 2) for m in search["bandwidth_grid"]]


def _prepare_skada(method, D, d, variant, search):
    import skada

    Xs, ys, Xt, Xte = D["Xs"], D["ys"], D["Xt"], D["Xte"]
    ns, nt = len(Xs), len(Xt)
    X = np.vstack([Xs, Xt])
    sample_domain = np.r_[np.ones(ns, dtype=int), -2 * np.ones(nt, dtype=int)]
    test_domain = -2 * np.ones(len(Xte), dtype=int)
    build = {
        "kmm": (skada.KMMReweightAdapter, {}),
        "kliep": (skada.KLIEPReweightAdapter, {"gamma": 1.0 / d, "random_state": 0}),
        "coral": (skada.CORALAdapter, {}),
        "sa": (skada.SubspaceAlignmentAdapter, {"n_components": min(N_COMPONENTS, d),
                                                 "random_state": 0}),
        "tca": (skada.TransferComponentAnalysisAdapter, {"n_components": min(N_COMPONENTS, d),
                                                          "mu": 0.1}),
    }
    cls, params = build[method]
    if variant == "search":  # transferkit's default search: LCV over its bandwidth grid
        params = {**params, "gamma": _search_gammas(search), "cv": 5}

    fitted = {}

    def run():
        adapter = fitted["est"] = cls(**{k: (list(v) if isinstance(v, list) else v)
                                         for k, v in params.items()})  # skada rewrites lists
        if method in INSTANCE:
            _, extra = adapter.fit_transform(X, sample_domain=sample_domain)
            w = _mean_one(np.asarray(extra["sample_weight"])[:ns])
            return lambda: _downstream(Xs, ys, Xte, w)
        Z = np.asarray(adapter.fit_transform(X, sample_domain=sample_domain))
        Zte = np.asarray(adapter.transform(Xte, sample_domain=test_domain))
        return lambda: _downstream(Z[:ns], ys, Zte)

    def ratio(X):  # the fitted density ratio at new rows (KLIEP)
        from sklearn.metrics.pairwise import rbf_kernel

        est = fitted["est"]
        return rbf_kernel(X, est.centers_, gamma=est.best_gamma_) @ est.alpha_

    return params, run, (ratio if method == "kliep" else None)


def _prepare_adapt(method, D, d, variant, search):
    from sklearn.linear_model import LogisticRegression

    import adapt.feature_based as fb
    import adapt.instance_based as ib

    Xs, ys, Xt, Xte = D["Xs"], D["ys"], D["Xt"], D["Xte"]
    ns = len(Xs)
    common = {"verbose": 0, "random_state": 0}
    if method == "kmm":
        cls = ib.KMM
        params = {"kernel": "rbf", **({"max_size": ns} if variant == "exact" else {})}
    elif method == "kliep":
        cls, params = ib.KLIEP, {"kernel": "rbf"}
        if variant == "search":  # transferkit's default search: LCV over its bandwidth grid
            params.update(gamma=_search_gammas(search), cv=5)
    elif method == "ulsif":
        cls, params = ib.ULSIF, {"kernel": "rbf", "lambdas": 1.0, "max_centers": 100}
        if variant == "search":  # transferkit's default search: LOO over its two grids
            params.update(gamma=_search_gammas(search), lambdas=list(search["reg_grid"]))
    elif method == "coral":
        cls, params = fb.CORAL, {}
    elif method == "sa":
        cls, params = fb.SA, {"n_components": min(N_COMPONENTS, d)}
    elif method == "tca":
        cls, params = fb.TCA, {"n_components": min(N_COMPONENTS, d), "mu": 0.1, "kernel": "rbf"}
    else:
        cls, params = ib.TrAdaBoost, {"n_estimators": N_ESTIMATORS, "lr": 1.0}
    lab = D["target_labelled"]

    fitted = {}

    def run():
        if method in INSTANCE:
            model = fitted["est"] = cls(Xt=Xt, **params, **common)
            w = _mean_one(model.fit_weights(Xs, Xt))
            return lambda: _downstream(Xs, ys, Xte, w)
        if method in FEATURE:
            model = cls(Xt=Xt, **params, **common)
            Zs = np.asarray(model.fit_transform(Xs, Xt))
            Zte = np.asarray(model.transform(Xte, domain="tgt"))
            return lambda: _downstream(Zs, ys, Zte)
        model = cls(LogisticRegression(max_iter=1000), Xt=Xt[lab], yt=D["yt"][lab],
                    **params, **common)
        model.fit(Xs, ys)
        return lambda: np.asarray(model.predict(Xte))

    shown = dict(params)
    if method == "tradaboost":
        shown["estimator"] = "LogisticRegression(max_iter=1000)"

    def ratio(X):  # the fitted density ratio at new rows (KLIEP)
        return np.asarray(fitted["est"].predict_weights(X)).ravel()

    return shown, run, (ratio if method == "kliep" else None)


def _prepare_baseline(method, D, d):
    def run():  # the source-only model is the classifier itself
        pred = _downstream(D["Xs"], D["ys"], D["Xte"])
        return lambda: pred

    return {}, run, None


def heldout_log_likelihood(ratio, Xs, Xte) -> float:
    """KLIEP's criterion on held-out target rows: mean log of the ratio, scaled to mean 1 on Xs.

    :math:`\\frac{1}{m}\\sum_j \\log \\hat w(x^{te}_j)` with
    :math:`\\hat w` rescaled so that its mean over the source rows is 1 (then
    :math:`\\hat w p_s` integrates to about 1): the held-out log-likelihood of
    the target density :math:`\\hat w p_s`, up to a constant, which is what
    KLIEP maximises.  Uniform weights score 0; higher is a better ratio.
    """
    scale = float(np.mean(ratio(Xs)))
    values = np.asarray(ratio(Xte), dtype=float) / scale
    return float(np.mean(np.log(np.maximum(values, 1e-300))))


def worker(spec: dict) -> dict:
    data = np.load(spec["data"])
    D = {k: data[k] for k in data.files}
    d = D["Xs"].shape[1]
    record = {"name": spec["name"], "impl": spec["impl"], "variant": spec["variant"]}
    impl = spec["impl"]
    if impl == "transferkit":
        params, run, ratio = _prepare_transferkit(spec["name"], D, d, spec["variant"])
    elif impl == "skada":
        params, run, ratio = _prepare_skada(spec["name"], D, d, spec["variant"], spec["search"])
    elif impl == "adapt":
        params, run, ratio = _prepare_adapt(spec["name"], D, d, spec["variant"], spec["search"])
    else:
        params, run, ratio = _prepare_baseline(spec["name"], D, d)
    # Warm-up outside the timed section (lazy imports of the downstream classifier),
    # then a pause: OpenBLAS/OpenMP worker threads spin for about 0.1 s after their
    # work before they sleep, and spinning threads slowed the first timed runs 2x.
    _downstream(D["Xs"][:50], D["ys"][:50], D["Xte"][:5], np.ones(50))
    time.sleep(IDLE_THREADS_S)
    baseline = rss_mb()
    load_before = os.getloadavg()[0]
    runs = []  # (wall seconds, cpu seconds) of each repetition of the method
    warm_up = None  # a first run under WARM_UP_BELOW_S seconds is not counted
    while True:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        finish = run()
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        if warm_up is None and not runs and seconds < WARM_UP_BELOW_S:
            warm_up = seconds
            continue
        runs.append((seconds,
                     (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)))
        spent = sum(r[0] for r in runs)
        if len(runs) >= spec["repeats"] or spent + seconds > spec["repeat_budget_s"]:
            break
    peak = rss_mb()
    start = time.perf_counter()
    pred = finish()  # the downstream classifier on the last repetition's output
    classifier_seconds = time.perf_counter() - start
    if ratio is not None:
        record["heldout_loglik"] = heldout_log_likelihood(ratio, D["Xs"], D["Xte"])
    median = np.median(np.array(runs), axis=0)
    record.update(
        seconds=float(median[0]), cpu_seconds=float(median[1]),
        classifier_seconds=classifier_seconds,
        runs=len(runs), seconds_each=[r[0] for r in runs], warm_up_seconds=warm_up,
        load_avg_1min=[load_before, os.getloadavg()[0]],
        peak_mb=peak, extra_mb=peak - baseline,
        baseline_mb=baseline, accuracy=float(np.mean(np.asarray(pred) == D["yte"])),
        status="ok", params={k: (v if isinstance(v, (int, float, str, bool)) or v is None
                                 else repr(v)) for k, v in params.items()},
    )
    return record


# --------------------------------------------------------------------------- parent
def ensure_peers_venv(venv: Path) -> Path:
    """Make (or reuse) the peers' virtual environment; return its python."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import skada, adapt; print(skada.__version__)"]
    if python.exists():
        ok = subprocess.run(check, capture_output=True, text=True, env=_child_env())
        if ok.returncode == 0:
            return python
        print(f"peer venv at {venv} is broken; re-installing", flush=True)
    else:
        print(f"creating peer venv at {venv} (skada, ADAPT, TensorFlow: a large download)",
              flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    subprocess.run(check, check=True, env=_child_env(), capture_output=True)
    return python


def _child_env() -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "2"
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _vm_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def run_measurement(python: str, spec: dict, timeout: float, mem_limit_mb: float,
                    workdir: Path) -> dict:
    out_path = workdir / f"out_{spec['name']}_{spec['impl']}_{spec['variant']}_{spec['n']}.json"
    spec = dict(spec, out=str(out_path))
    log_path = out_path.with_suffix(".log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([python, __file__, "--worker", json.dumps(spec)],
                                stdout=log, stderr=subprocess.STDOUT, env=_child_env())
        start = time.perf_counter()
        status, seen_mb = None, 0.0
        while proc.poll() is None:
            seen_mb = max(seen_mb, _vm_rss_mb(proc.pid))
            if seen_mb > mem_limit_mb:
                status = "oom"
            elif time.perf_counter() - start > timeout:
                status = "timeout"
            if status:
                proc.kill()
                proc.wait()
                break
            time.sleep(0.1)
    elapsed = time.perf_counter() - start
    if status is None and proc.returncode == 0 and out_path.exists():
        return json.loads(out_path.read_text())
    record = {"name": spec["name"], "impl": spec["impl"], "variant": spec["variant"],
              "seconds": None, "classifier_seconds": None, "cpu_seconds": None, "peak_mb": None,
              "extra_mb": None,
              "accuracy": None}
    if status == "timeout":
        record.update(status="timeout", note=f"stopped after {timeout:.0f} s")
    elif status == "oom":
        record.update(status="oom", note=f"resident memory passed {mem_limit_mb:.0f} MB "
                                         f"after {elapsed:.0f} s")
    else:
        tail = log_path.read_text().strip().splitlines()[-3:] if log_path.exists() else []
        text = f"exit code {proc.returncode}: " + " | ".join(tail)
        missing = ("ModuleNotFoundError", "ImportError", "AttributeError: module")
        if any(word in text for word in missing):
            record.update(status="not implemented", note=text[-300:])
        else:
            record.update(status="error", note=text[-300:])
    return record


def measure(python: str, spec: dict, timeout: float, mem_limit_mb: float, workdir: Path,
            processes: int) -> dict:
    """:func:`run_measurement`, repeated in fresh processes when the method is quick.

    A method whose median took under ``QUICK_S`` seconds is measured in
    ``processes`` separate processes in all: from one process to the next its
    timings moved by up to 30% (thread pools, memory layout), more than the
    repetitions inside one process vary.  ``seconds`` and ``cpu_seconds`` are
    then the medians of the per-process medians (``seconds_per_process`` keeps
    them), ``seconds_each`` holds every repetition, ``peak_mb`` and
    ``extra_mb`` are the largest seen; the rest (accuracy, ...) comes from the
    first process (the methods are deterministic).
    """
    first = run_measurement(python, spec, timeout, mem_limit_mb, workdir)
    if first.get("status") != "ok" or first["seconds"] >= QUICK_S or processes <= 1:
        return first
    more = [run_measurement(python, spec, timeout, mem_limit_mb, workdir)
            for _ in range(processes - 1)]
    runs = [first] + [r for r in more if r.get("status") == "ok"]
    record = dict(first)
    record.update(
        processes=len(runs),
        seconds_per_process=[r["seconds"] for r in runs],
        seconds=float(np.median([r["seconds"] for r in runs])),
        cpu_seconds=float(np.median([r["cpu_seconds"] for r in runs])),
        seconds_each=[x for r in runs for x in r["seconds_each"]],
        runs=sum(r["runs"] for r in runs),
        peak_mb=max(r["peak_mb"] for r in runs),
        extra_mb=max(r["extra_mb"] for r in runs),
        load_avg_1min=[x for r in runs for x in r["load_avg_1min"]],
    )
    return record


def fmt(value, spec, missing="-"):
    return missing if value is None else format(value, spec)


def markdown_table(records: list[dict]) -> str:
    lines = ["| method | impl | variant | n | d | seconds | cpu s | classifier s | runs "
             "| peak MB | extra MB | accuracy | status |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    order = {m: i for i, m in enumerate(["source_only", *METHODS])}
    impl_order = {"baseline": 0, "transferkit": 1, "skada": 2, "adapt": 3}
    for r in sorted(records, key=lambda r: (r["n"], order.get(r["name"], 99),
                                            impl_order.get(r["impl"], 9), r["variant"])):
        lines.append(
            f"| {r['name']} | {r['impl']} | {r['variant']} | {r['n']:,} | {r['d']} "
            f"| {fmt(r.get('seconds'), '.3f')} | {fmt(r.get('cpu_seconds'), '.3f')} "
            f"| {fmt(r.get('classifier_seconds'), '.3f')} | {fmt(r.get('runs'), 'd')} "
            f"| {fmt(r.get('peak_mb'), '.0f')} | {fmt(r.get('extra_mb'), '.0f')} "
            f"| {fmt(r.get('accuracy'), '.3f')} | {r['status']} |")
    return "\n".join(lines)


def summary_table(records: list[dict]) -> str:
    """transferkit (default variant) against the fastest successful peer, per method and n."""
    lines = ["| method | n | transferkit s | fastest peer | peer s | speed-up | "
             "transferkit cpu s | peer cpu s | cpu speed-up | transferkit acc | peer acc "
             "| exact acc |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    ok = [r for r in records if r["status"] == "ok"]
    for n in sorted({r["n"] for r in records}):
        for name in METHODS:
            ours = [r for r in ok if r["n"] == n and r["name"] == name
                    and r["impl"] == "transferkit" and r["variant"] == "default"]
            if not ours:
                continue
            tk = ours[0]
            peers = [r for r in ok if r["n"] == n and r["name"] == name
                     and r["impl"] in ("skada", "adapt")]
            exact = [r for r in ok if r["n"] == n and r["name"] == name
                     and r["impl"] == "transferkit" and r["variant"] == "exact"]
            exact_acc = fmt(exact[0]["accuracy"], ".3f") if exact else "-"
            if peers:
                best = min(peers, key=lambda r: r["seconds"])
                lines.append(
                    f"| {name} | {n:,} | {tk['seconds']:.3f} | {best['impl']} "
                    f"({best['variant']}) | {best['seconds']:.3f} "
                    f"| {best['seconds'] / tk['seconds']:.1f}x | {tk['cpu_seconds']:.3f} "
                    f"| {best['cpu_seconds']:.3f} "
                    f"| {best['cpu_seconds'] / max(tk['cpu_seconds'], 1e-9):.1f}x "
                    f"| {tk['accuracy']:.3f} "
                    f"| {best['accuracy']:.3f} | {exact_acc} |")
            else:
                lines.append(f"| {name} | {n:,} | {tk['seconds']:.3f} | no peer result | - | - "
                             f"| {tk['cpu_seconds']:.3f} | - | - "
                             f"| {tk['accuracy']:.3f} | - | {exact_acc} |")
    return "\n".join(lines)


# (transferkit variant, peer variant, what the two have in common)
LIKE_FOR_LIKE = [("matched", "default", "the peers' hyper-parameters, one fit"),
                 ("default", "search", "transferkit's default model selection")]


def like_for_like_table(records: list[dict]) -> str:
    """KLIEP and uLSIF: transferkit against the fastest peer doing the same work."""
    lines = ["| method | n | same work | transferkit s | fastest peer | peer s | speed-up "
             "| transferkit acc | peer acc | transferkit log-lik | peer log-lik |",
             "|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    ok = [r for r in records if r["status"] == "ok"]
    for n in sorted({r["n"] for r in records}):
        for name in ("kliep", "ulsif"):
            for tk_variant, peer_variant, label in LIKE_FOR_LIKE:
                ours = [r for r in ok if r["n"] == n and r["name"] == name
                        and r["impl"] == "transferkit" and r["variant"] == tk_variant]
                peers = [r for r in ok if r["n"] == n and r["name"] == name
                         and r["impl"] in ("skada", "adapt") and r["variant"] == peer_variant]
                if not ours or not peers:
                    continue
                tk, best = ours[0], min(peers, key=lambda r: r["seconds"])
                lines.append(
                    f"| {name} | {n:,} | {label} | {tk['seconds']:.3f} | {best['impl']} "
                    f"({best['variant']}) | {best['seconds']:.3f} "
                    f"| {best['seconds'] / tk['seconds']:.1f}x | {tk['accuracy']:.3f} "
                    f"| {best['accuracy']:.3f} | {fmt(tk.get('heldout_loglik'), '.4f')} "
                    f"| {fmt(best.get('heldout_loglik'), '.4f')} |")
    return "\n".join(lines)


def write_outputs(records: list[dict], results_json: Path, results_md: Path) -> None:
    """Print the tables; write the JSON records and the Markdown file."""
    table = markdown_table(records)
    summary = summary_table(records)
    like_for_like = like_for_like_table(records)
    print()
    print(table)
    print()
    print(summary)
    print()
    print(like_for_like)
    results_json.parent.mkdir(parents=True, exist_ok=True)
    results_json.write_text(json.dumps(records, indent=2) + "\n")
    limits = sorted({(r.get("timeout_s"), r.get("mem_limit_mb")) for r in records})
    limit_text = "; ".join(f"timeout {t:.0f} s and memory limit {m:.0f} MB" for t, m in limits
                           if t is not None and m is not None)
    loads = [x for r in records for x in (r.get("load_avg_1min") or [])]
    load_text = (f" The machine's 1-minute load average during the measurements ranged "
                 f"{min(loads):.1f}-{max(loads):.1f} on its 2 cores (the measurements' own "
                 "threads count in it)." if loads else "")
    header = (
        "# bench_methods: transferkit vs skada 0.6.0 vs ADAPT 0.4.5\n\n"
        "Written by `python benchmarks/bench_methods.py` (settings, data and protocol: "
        "the script's docstring). Synthetic covariate-shift task, n_source = n_target = n, "
        "2,000 held-out target rows for accuracy; 2 cores. `seconds`: wall clock of the "
        "method (fit + source weights, or fit + mapping of the source and test rows; "
        "TrAdaBoost: its fit), the median of back-to-back repetitions in one process "
        "(after one uncounted warm-up run when the first run took under a second); a "
        "method quicker than a second is measured so in 3 fresh processes and the median "
        "of the 3 medians is reported (`runs`: repetitions in all); `cpu s`: "
        "user + system CPU seconds of the same (all threads, median); `classifier s`: the "
        "downstream logistic regression's fit + predict on the last repetition's output, "
        "timed once (the same work for every implementation, so not part of the "
        "comparison); `peak MB`: process peak RSS incl. interpreter, "
        "imports (TensorFlow for ADAPT) and data; `extra MB`: peak RSS added by the timed "
        f"section. Limits per measurement (per record in the JSON): {limit_text}.{load_text}"
        "\n\n")
    results_md.write_text(header + table + "\n\n## transferkit (default) vs the fastest peer\n\n"
                          "fastest peer = the successful peer measurement with the fewest wall "
                          "seconds; speed-up = its seconds / transferkit's seconds (wall clock); "
                          "cpu speed-up = the same peer's cpu s / transferkit's cpu s; exact acc "
                          "= transferkit's exact variant.\n\n"
                          + summary + "\n\n## Same work: KLIEP and uLSIF\n\n"
                          "transferkit's default searches the bandwidth (KLIEP: likelihood "
                          "cross-validation, 5 widths x 5 folds; uLSIF: leave-one-out, 5 widths "
                          "x 4 ridges); the peers' defaults fit one width. Here each side does "
                          "the same work: transferkit `matched` against the peers' `default`, "
                          "and transferkit `default` against the peers' `search` (the same "
                          "grid: transferkit's default grids around the same median-heuristic "
                          "width). log-lik (KLIEP): the held-out target log-likelihood of "
                          "the fitted ratio, rescaled to mean 1 on the source rows, on the "
                          "2,000 test rows (KLIEP's own criterion; uniform weights score 0, "
                          "higher is better).\n\n" + like_for_like + "\n")
    print(f"\nwrote {results_json} and {results_md}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="n = 1,000, d = 16, no large size (a few minutes)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="comma-separated subset of " + ",".join(METHODS))
    parser.add_argument("--sizes", default=None, help="n_source = n_target values "
                        "(default 2000,8000; --quick: 1000)")
    parser.add_argument("--d", type=int, default=None, help="features (default 64; quick 16)")
    parser.add_argument("--large-n", type=int, default=100_000,
                        help="transferkit-only size (0 to skip; skipped by --quick)")
    parser.add_argument("--large-peers", action="store_true",
                        help="also try the peers at --large-n (expect timeout/oom)")
    parser.add_argument("--impls", default="transferkit,skada,adapt",
                        help="which implementations to run")
    parser.add_argument("--tk-variants", default="default,matched,exact",
                        help="transferkit variants to run (where a method has them)")
    parser.add_argument("--peer-variants", default=None,
                        help="only these peer variants (e.g. batched); default: all")
    parser.add_argument("--no-peers", action="store_true", help="skip skada/ADAPT and their venv")
    parser.add_argument("--no-baseline", action="store_true", help="skip source_only")
    parser.add_argument("--venv", default=str(DEFAULT_VENV), help="peer venv location")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds per measurement (default 300)")
    parser.add_argument("--mem-limit-mb", type=float, default=8000.0,
                        help="kill a measurement past this resident memory (default 8000)")
    parser.add_argument("--repeats", type=int, default=15,
                        help="timed runs per measurement; the median is reported (default 15)")
    parser.add_argument("--repeat-budget", type=float, default=20.0,
                        help="no further repetition once the next would pass this many "
                             "timed seconds (default 20)")
    parser.add_argument("--processes", type=int, default=3,
                        help="fresh processes per quick measurement (median under "
                             f"{QUICK_S:g} s); default 3")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--update", action="store_true",
                        help="merge into the existing JSON (replacing same name/impl/"
                             "variant/n/d records) instead of overwriting it")
    parser.add_argument("--json", default=str(RESULTS_JSON), help="JSON output path")
    parser.add_argument("--md", default=str(RESULTS_MD), help="Markdown output path")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    results_json, results_md = Path(args.json), Path(args.md)
    if args.worker:
        spec = json.loads(args.worker)
        record = worker(spec)
        Path(spec["out"]).write_text(json.dumps(record))
        return

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {METHODS}")
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    tk_variants = {v.strip() for v in args.tk_variants.split(",") if v.strip()}
    peer_variants = (None if args.peer_variants is None else
                     {v.strip() for v in args.peer_variants.split(",") if v.strip()})
    if args.no_peers:
        impls = [i for i in impls if i == "transferkit"]
    d = args.d or (16 if args.quick else 64)
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else [1000] if args.quick else [2000, 8000])
    large = 0 if args.quick else args.large_n

    peer_python = None
    if any(i in ("skada", "adapt") for i in impls):
        peer_python = str(ensure_peers_venv(Path(args.venv)))

    plan = []  # (n, impl, name, variant)
    for n in sizes + ([large] if large and large not in sizes else []):
        is_large = n == large and n not in sizes
        if not args.no_baseline:
            plan.append((n, "baseline", "source_only", "default"))
        for name in methods:
            for impl in impls:
                if impl == "transferkit":
                    for variant in TK_VARIANTS.get(name, ["default"]):
                        if variant in tk_variants and not (is_large and variant == "exact"):
                            plan.append((n, impl, name, variant))
                elif not is_large or args.large_peers:
                    for variant in PEER_VARIANTS.get((name, impl), ["n/a"]):
                        if peer_variants is None or variant in peer_variants | {"n/a"}:
                            plan.append((n, impl, name, variant))

    machine = {"cpu_count": os.cpu_count(), "python": platform.python_version(),
               "numpy": np.__version__, "quick": bool(args.quick), "seed": args.seed,
               "timeout_s": args.timeout, "mem_limit_mb": args.mem_limit_mb,
               "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    records = []
    with tempfile.TemporaryDirectory(prefix="bench_methods_") as tmp:
        workdir = Path(tmp)
        data_files, searches = {}, {}
        for n in sorted({p[0] for p in plan}):
            path = workdir / f"data_n{n}_d{d}.npz"
            data = make_data(n, d, seed=args.seed)
            np.savez(path, **data)
            data_files[n] = str(path)
            searches[n] = search_grid(data)
        for n, impl, name, variant in plan:
            base = {"name": name, "impl": impl, "variant": variant, "n": n, "n_source": n,
                    "n_target": n, "n_test": N_TEST, "d": d}
            if variant == "n/a":
                record = {**base, "seconds": None, "classifier_seconds": None, "peak_mb": None,
                          "extra_mb": None, "accuracy": None, "status": "n/a",
                          "note": f"{impl} has no {name}"}
            else:
                print(f"n={n:>7,}  {name:<12}{impl:<12}{variant:<9}", end="", flush=True)
                python = peer_python if impl in ("skada", "adapt") else sys.executable
                spec = {**base, "data": data_files[n], "search": searches[n],
                        "repeats": args.repeats, "repeat_budget_s": args.repeat_budget}
                record = {**base, **measure(python, spec, args.timeout, args.mem_limit_mb,
                                            workdir, args.processes)}
                print(f"{fmt(record.get('seconds'), '9.2f', '        -')} s "
                      f"{fmt(record.get('extra_mb'), '8.0f', '       -')} MB extra  "
                      f"acc {fmt(record.get('accuracy'), '.3f')}  {record['status']}",
                      flush=True)
            record.update(machine)
            records.append(record)

    if args.update and results_json.exists():
        key = lambda r: (r["name"], r["impl"], r["variant"], r["n"], r["d"])  # noqa: E731
        new_keys = {key(r) for r in records}
        old = [r for r in json.loads(results_json.read_text()) if key(r) not in new_keys]
        records = old + records

    write_outputs(records, results_json, results_md)

if __name__ == "__main__":
    main()
