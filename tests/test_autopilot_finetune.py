"""The fine-tuning strategies in the autopilot: raw inputs beside the features, the
per-strategy budget on the leaderboard, and a shipped fine-tuned member that
predicts from a table of raw texts (through a saved model folder)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from transferkit.autopilot import Autopilot  # noqa: E402
from transferkit.autopilot.ensemble import WeightedEnsemble  # noqa: E402
from transferkit.autopilot.registry import TaskInfo, get_strategy  # noqa: E402
from transferkit.domains import stack_domains  # noqa: E402
from transferkit.validation import TransferKitInputError  # noqa: E402

GOOD = ["great drug, it helped a lot", "works well and fast", "no problems, very happy",
        "my pain is gone", "best treatment so far", "I feel much better now"]
BAD = ["terrible side effects", "made me feel sick and dizzy", "awful headache every day",
       "it did nothing but harm", "worst pills ever", "I had to stop, it hurt"]


def _text_task():
    texts = GOOD + BAD + [t + " indeed" for t in GOOD + BAD]
    labels = np.array(["good"] * 6 + ["bad"] * 6 + ["good"] * 6 + ["bad"] * 6)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(len(texts), 4)) + (labels == "good")[:, None]
    X, y = stack_domains(features[:12], labels[:12], features[12:], labels[12:])
    return X, y, texts, labels


def test_fine_tuning_applies_only_with_raw_inputs_and_a_fine_tunable_backbone():
    base = dict(task="classification", n_source=10, n_source_domains=1,
                n_labelled_target=20, n_unlabelled_target=0, n_features=4)
    strategy = get_strategy("finetune_lp_ft")
    assert strategy.inputs == "raw"
    assert strategy.applies(TaskInfo(**base, modality="text", raw_inputs=True,
                                     backbone="all-MiniLM-L6-v2"))
    assert not strategy.applies(TaskInfo(**base, modality="text", raw_inputs=False,
                                         backbone="all-MiniLM-L6-v2"))
    assert not strategy.applies(TaskInfo(**base, modality="tabular", raw_inputs=True,
                                         backbone="all-MiniLM-L6-v2"))
    assert not strategy.applies(TaskInfo(**base, modality="text", raw_inputs=True,
                                         backbone="hf:some/model"))
    assert get_strategy("finetune_source_then_target").applies(
        TaskInfo(**base, modality="image", raw_inputs=True, backbone="mobilenet_v2"))


def test_autopilot_evaluates_fine_tuning_on_the_same_folds_within_its_budget():
    X, y, texts, _ = _text_task()
    autopilot = Autopilot(strategies=["target_only", "finetune_lp_ft"], modality="text",
                          n_splits=2, n_repeats=1, n_jobs=1, shift_permutations=20,
                          strategy_time_budget=3.0, random_state=0)
    result = autopilot.run(X, y, raw=texts)
    board = result.leaderboard.set_index("strategy")
    assert set(board.index) == {"target_only", "finetune_lp_ft"}
    assert board.loc["finetune_lp_ft", "folds"] == board.loc["target_only", "folds"] == 2
    assert 0 <= board.loc["finetune_lp_ft", "budget_stops"] <= 2
    # 3 s over 2 evaluation fits and the refit: 1 s a fit, plus building and predicting
    assert board.loc["finetune_lp_ft", "fit_seconds"] < 20
    with pytest.raises(TransferKitInputError, match="one raw input"):
        autopilot.run(X, y, raw=texts[:-1])
    with pytest.raises(TransferKitInputError, match="Strategies"):
        Autopilot(strategies=["finetune_lp_ft"], modality="text").run(X, y)


def test_a_shipped_fine_tuned_member_predicts_from_a_table_of_texts(tmp_path):
    from transferkit.deep.finetune import FineTuneClassifier
    from transferkit.deep.transfer import FineTuneTransfer
    from transferkit.featurize import ColumnFeatureExtractor, RawInputModel
    from transferkit.persistence import load_model, save_model

    _, _, texts, labels = _text_task()
    table = pd.DataFrame({"review": texts})
    extract = ColumnFeatureExtractor("review", "text").fit()
    features = extract.transform(table)
    X, y = stack_domains(features[:12], labels[:12], features[12:], labels[12:])
    from transferkit.baselines import TargetOnly

    linear = TargetOnly().fit(X, y)
    tuned = FineTuneTransfer(FineTuneClassifier("all-MiniLM-L6-v2", epochs=1, probe_epochs=2,
                                                backbone_options={"max_length": 16}),
                             stages="source_then_target", source_epochs=1).fit(texts, y)
    ensemble = WeightedEnsemble([linear, tuned], [0.5, 0.5], "classification",
                                ("bad", "good"), inputs=["features", "raw"])
    assert ensemble.needs_raw
    with pytest.raises(TransferKitInputError, match="raw="):
        ensemble.predict(features[:3])
    expected = ensemble.predict_proba(features[:3], raw=texts[:3])
    save_model(tmp_path / "model", RawInputModel(extract, ensemble), feature_frame=table,
               task="classification", modality="text", classes=("bad", "good"))
    again = load_model(tmp_path / "model")
    np.testing.assert_allclose(again.predict_proba(table.iloc[:3]), expected, atol=1e-5)
    assert list(again.predict(table.iloc[:3])) == list(ensemble.classes_[expected.argmax(1)])


def test_bad_raw_inputs_and_budget_settings_are_named():
    X, y, texts, _ = _text_task()
    with pytest.raises(TransferKitInputError, match="strategy_time_budget"):
        Autopilot(strategy_time_budget="soon").run(X, y, raw=texts)
    with pytest.raises(TransferKitInputError, match="raw must be a list"):
        Autopilot(strategies=["target_only"], modality="text").run(X, y, raw="one text")


@pytest.mark.slow
def test_transferkit_run_on_a_text_task_file_fine_tunes_and_predicts_raw_texts(tmp_path):
    import json
    import subprocess
    import sys

    texts = GOOD + BAD
    source = pd.DataFrame({"review": [t + " indeed" for t in texts] * 2,
                           "label": (["good"] * 6 + ["bad"] * 6) * 2})
    target = pd.DataFrame({"review": texts, "label": ["good"] * 6 + ["bad"] * 6})
    source.to_csv(tmp_path / "source.csv", index=False)
    target.to_csv(tmp_path / "target.csv", index=False)
    pd.DataFrame({"review": ["it helped me a lot", "it made me sick"]}).to_csv(
        tmp_path / "new.csv", index=False)
    (tmp_path / "task.yaml").write_text(
        "sources: {old: source.csv}\ntarget: target.csv\nlabel: label\ntext_column: review\n"
        "strategies: [pooled, finetune_lp_ft]\nn_splits: 2\nn_repeats: 1\n"
        "strategy_time_budget: 20\noutput: out\ncache_dir: cache\n")
    cli = lambda *a: subprocess.run([sys.executable, "-m", "transferkit.cli", *map(str, a)],  # noqa: E731
                                    capture_output=True, text=True, timeout=600)
    run = cli("run", tmp_path / "task.yaml", "--json", "--quiet")
    assert run.returncode == 0, run.stderr
    board = {r["strategy"]: r for r in json.loads(run.stdout)["leaderboard"]}
    assert set(board) == {"target_only", "pooled", "finetune_lp_ft"}
    assert board["finetune_lp_ft"]["folds"] == 2 and "budget_stops" in board["finetune_lp_ft"]
    pred = cli("predict", tmp_path / "out" / "model", tmp_path / "new.csv",
               "--output", tmp_path / "pred.csv")
    assert pred.returncode == 0, pred.stderr
    assert set(pd.read_csv(tmp_path / "pred.csv")["prediction"]) <= {"good", "bad"}
