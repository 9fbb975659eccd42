"""One contract for every transfer estimator: determinism, shapes, pandas, bad input.

Each method also has its own file testing it against an independent
reference; this sweep checks the behaviour they must all share.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from transferkit.baselines import Pooled, SourceOnly, TargetOnly
from transferkit.domains import read_domains, stack_domains
from transferkit.evaluation import TargetGridSearch
from transferkit.feature_based import CORAL, JDA, TCA, SubspaceAlignment
from transferkit.instance_based import (
    KLIEP,
    KMM,
    ULSIF,
    DiscriminativeWeights,
    ImportanceWeighted,
    InstanceSelection,
    NearestNeighbourWeights,
    RuLSIF,
    TrAdaBoostClassifier,
    TrAdaBoostR2,
    TwoStageTrAdaBoostR2,
)
from transferkit.model_based import (
    ContinuedBoostingClassifier,
    ContinuedBoostingRegressor,
    RegularizedTransferClassifier,
    RegularizedTransferRegressor,
)
from transferkit.validation import TransferKitInputError

ADAPTERS = {
    "coral": lambda: CORAL(),
    "subspace_alignment": lambda: SubspaceAlignment(n_components=3),
    "tca": lambda: TCA(n_components=3, random_state=0),
    "tca_nystroem": lambda: TCA(n_components=3, method="nystroem", n_landmarks=40,
                                random_state=0),
    "jda": lambda: JDA(n_components=3, n_iter=2, random_state=0),
}
WEIGHTERS = {
    "discriminative": lambda: DiscriminativeWeights(random_state=0),
    "kmm": lambda: KMM(random_state=0),
    "kmm_nystroem": lambda: KMM(solver="nystroem", n_components=30, random_state=0),
    "kliep": lambda: KLIEP(random_state=0),
    "ulsif": lambda: ULSIF(random_state=0),
    "rulsif": lambda: RuLSIF(random_state=0),
    "nn": lambda: NearestNeighbourWeights(random_state=0),
}
CLASSIFIERS = {
    "target_only": lambda: TargetOnly(random_state=0),
    "source_only": lambda: SourceOnly(random_state=0),
    "pooled": lambda: Pooled(random_state=0),
    "importance_weighted": lambda: ImportanceWeighted(random_state=0),
    "importance_weighted_roc_auc": lambda: ImportanceWeighted(scoring="roc_auc",
                                                              random_state=0),
    "instance_selection": lambda: InstanceSelection(random_state=0),
    "instance_selection_cv": lambda: InstanceSelection(n_keep=("auto", 0.5, 1.0),
                                                       random_state=0),
    "tradaboost": lambda: TrAdaBoostClassifier(n_estimators=4, random_state=0),
    "regularized": lambda: RegularizedTransferClassifier(random_state=0),
    "continued_boosting": lambda: ContinuedBoostingClassifier(n_target_trees=5,
                                                              random_state=0),
    "target_grid_search": lambda: TargetGridSearch(
        Pipeline([("adapt", TCA(random_state=0)), ("model", Pooled(random_state=0))]),
        {"adapt__n_components": [3, 2]}, random_state=0),
}
REGRESSORS = {
    "tradaboost_r2": lambda: TrAdaBoostR2(n_estimators=4, random_state=0),
    "two_stage_tradaboost_r2": lambda: TwoStageTrAdaBoostR2(n_steps=2, n_estimators=3,
                                                             random_state=0),
    "regularized_r": lambda: RegularizedTransferRegressor(random_state=0),
    "continued_boosting_r": lambda: ContinuedBoostingRegressor(n_target_trees=5,
                                                               random_state=0),
    "pooled_r": lambda: Pooled(task="regression", random_state=0),
    "target_grid_search_r": lambda: TargetGridSearch(
        Pooled(task="regression"), {"target_weight": [1.0, 3.0]}, random_state=0),
    "target_grid_search_mae": lambda: TargetGridSearch(
        Pooled(task="regression"), {"target_weight": [1.0, 3.0]}, scoring="mae",
        random_state=0),
}


def make_data(task="classification", seed=0):
    rng = np.random.default_rng(seed)
    Xs = rng.normal(0.0, 1.0, size=(120, 4))
    Xt = rng.normal(0.4, 1.2, size=(60, 4))
    w = np.array([1.0, -1.0, 0.5, 0.0])
    if task == "classification":
        ys, yt = (Xs @ w > 0).astype(int), (Xt @ w > 0.4).astype(object)
    else:
        ys, yt = Xs @ w + rng.normal(0, .1, 120), (Xt @ w + rng.normal(0, .1, 60)).astype(object)
    yt[30:] = None  # half the target unlabelled
    return stack_domains(Xs, ys, Xt, yt)


def output(est, X, y, kind):
    """What the estimator produces after fit, for comparing two fits."""
    if kind == "adapter":
        return np.vstack([est.fit_transform(X, y), est.transform(X[:7])])
    if kind == "weighter":
        return est.fit(X, y).weights_
    est.fit(X, y)
    return est.predict(X[:25])


CASES = ([(n, f, "adapter", "classification") for n, f in ADAPTERS.items()]
         + [(n, f, "weighter", "classification") for n, f in WEIGHTERS.items()]
         + [(n, f, "predictor", "classification") for n, f in CLASSIFIERS.items()]
         + [(n, f, "predictor", "regression") for n, f in REGRESSORS.items()])
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name, factory, kind, task", CASES, ids=IDS)
def test_deterministic_shapes_and_pandas(name, factory, kind, task):
    X, y = make_data(task)
    first = output(factory(), X, y, kind)
    second = output(factory(), X, y, kind)
    np.testing.assert_array_equal(first, second)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    from_frame = output(factory(), frame, y, kind)
    if kind == "predictor" and task == "classification":
        np.testing.assert_array_equal(first, from_frame)
    else:
        np.testing.assert_allclose(first, from_frame, rtol=1e-6, atol=1e-8)
    if kind == "adapter":
        assert first.shape[0] == len(X) + 7 and first.ndim == 2
        assert np.isfinite(first).all()
    elif kind == "weighter":
        info = read_domains(y)
        assert first.shape == (len(X),) and (first >= 0).all()
        assert first[info.is_source].mean() == pytest.approx(1.0, rel=1e-6)
    else:
        assert first.shape == (25,)
        if task == "classification":
            assert set(np.unique(first)) <= {0, 1}


@pytest.mark.parametrize("name, factory, kind, task", CASES, ids=IDS)
def test_bad_input_gives_clear_errors(name, factory, kind, task):
    X, y = make_data(task)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(TransferKitInputError, match="NaN"):
        factory().fit(bad, y)
    info = read_domains(y)
    with pytest.raises(TransferKitInputError, match="stack_domains"):
        factory().fit(X, info.labels)
    no_target = y.copy()
    no_target["is_target"] = False
    with pytest.raises(TransferKitInputError, match="No target rows"):
        factory().fit(X, no_target)
    fitted = factory().fit(X, y)
    apply = fitted.transform if kind == "adapter" else (
        fitted.predict if kind == "predictor" else getattr(fitted, "compute_weights", None))
    if apply is not None:
        with pytest.raises((ValueError, NotImplementedError), match="feature|transductive"):
            apply(X[:5, :3])


ONE_CLASS_CASES = [c for c in CASES if c[3] == "classification"
                   and (c[2] == "predictor" or c[0] == "jda")]


@pytest.mark.parametrize("name, factory, kind, task", ONE_CLASS_CASES,
                         ids=[c[0] for c in ONE_CLASS_CASES])
def test_single_class_is_rejected(name, factory, kind, task):
    X, y = make_data(task)
    y = y.copy()
    labelled = y["label"].notna()
    y.loc[labelled, "label"] = 1
    with pytest.raises(TransferKitInputError, match="(?i)class"):
        factory().fit(X, y)
