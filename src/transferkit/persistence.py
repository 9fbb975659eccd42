"""Saving and loading fitted models.

A model folder holds ``model.joblib`` (the fitted scikit-learn pipeline) and
``model.json`` (what it needs: feature columns and dtypes, task, classes,
versions, and the SHA-256 of ``model.joblib``).  Both are written atomically.
:func:`load_model` checks the hash before unpickling, so a corrupted or
swapped file is refused.  Pickle runs code from the file it loads: only load
model folders you (or your pipeline) wrote.

Example
-------
>>> from transferkit.persistence import save_model, load_model   # doctest: +SKIP
>>> save_model("out/model", result.model, feature_frame=X, task="classification")  # doctest: +SKIP
>>> load_model("out/model").predict(X_new)                        # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn

from transferkit.io import write_atomic, write_json
from transferkit.validation import TransferKitInputError, describe_column_mismatch

__all__ = ["save_model", "load_model", "SavedModel"]

MODEL_FILE, META_FILE = "model.joblib", "model.json"
FORMAT = "transferkit-model/1"


def save_model(directory, model, feature_frame=None, n_features=None, task=None,
               classes=(), positive_label=None, label=None, strategy=None,
               modality="tabular") -> Path:
    """Save a fitted pipeline and its metadata into ``directory``."""
    directory = Path(directory)
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    payload = buffer.getvalue()
    if feature_frame is not None and isinstance(feature_frame, pd.DataFrame):
        columns = [{"name": str(c), "dtype": str(feature_frame[c].dtype)}
                   for c in feature_frame.columns]
        n_features = len(columns)
    else:
        columns = None
    from transferkit import __version__

    meta = {
        "format": FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "transferkit_version": __version__,
        "sklearn_version": sklearn.__version__,
        "python_version": platform.python_version(),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "task": task,
        "modality": modality,
        "strategy": strategy,
        "label": label,
        "classes": [_plain(c) for c in classes],
        "positive_label": _plain(positive_label),
        "columns": columns,
        "n_features": n_features,
    }
    write_atomic(directory / MODEL_FILE, payload)
    write_json(directory / META_FILE, meta)
    return directory


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass
class SavedModel:
    """A loaded model with the column checks it was saved with."""

    pipeline: object
    metadata: dict
    #: the files the model was trained from (the run folder's manifest), never written over
    inputs: tuple = ()

    def check_features(self, X, ignore=()):
        """Return ``X`` restricted to the trained columns, or raise a clear error.

        Columns named in ``ignore`` (e.g. the label column) may be present and
        are dropped; any other unknown column is an error, since a renamed or
        misspelled column would otherwise be silently imputed.
        """
        columns = self.metadata.get("columns")
        if columns is None:
            array = np.asarray(X)
            expected = self.metadata.get("n_features")
            if array.ndim != 2 or (expected is not None and array.shape[1] != expected):
                raise TransferKitInputError(
                    f"The model expects {expected} features, got shape {array.shape}."
                )
            return X
        if not isinstance(X, pd.DataFrame):
            raise TransferKitInputError("This model was trained on a table: pass a DataFrame.")
        names = [c["name"] for c in columns]
        mismatch = describe_column_mismatch(names, X.columns, ignore)
        if mismatch:
            raise TransferKitInputError(
                f"The data does not match the model's columns: {mismatch}. The "
                f"model was trained on {names[:30]}; rename or drop columns to match."
            )
        return X[names]

    def predict(self, X, ignore=()):
        return self.pipeline.predict(self.check_features(X, ignore))

    def predict_proba(self, X, ignore=()):
        return self.pipeline.predict_proba(self.check_features(X, ignore))


def _check_metadata(meta, meta_path: Path) -> dict:
    if not isinstance(meta, dict):
        raise TransferKitInputError(
            f"{meta_path} must hold a JSON object of model metadata, not a "
            f"{type(meta).__name__}; the model folder is damaged. Re-run training.")
    version = meta.get("format")
    if not isinstance(version, str) or not version.startswith("transferkit-model/"):
        raise TransferKitInputError(
            f"{meta_path} is not transferkit model metadata (format {version!r}).")
    if version != FORMAT:
        raise TransferKitInputError(
            f"{meta_path} has format {version!r}; this transferkit reads {FORMAT!r}. "
            f"Load it with the transferkit version that wrote it "
            f"({meta.get('transferkit_version')!r}), or re-run training.")
    columns = meta.get("columns")
    if columns is not None and (not isinstance(columns, list) or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str) for c in columns)):
        raise TransferKitInputError(
            f"{meta_path}: 'columns' must be a list of {{name, dtype}} entries; the model "
            f"folder is damaged. Re-run training.")
    if not isinstance(meta.get("sha256"), str):
        raise TransferKitInputError(f"{meta_path} has no model checksum ('sha256').")
    return meta


def _run_inputs(directory: Path) -> tuple:
    """The run folder's manifest around a model folder: checked, and its input files."""
    from transferkit.output import read_manifest, verify

    run = directory.resolve().parent
    manifest = read_manifest(run)
    if manifest is None or not any(str(f.get("path", "")).startswith(f"{directory.name}/")
                                   for f in manifest["files"] if isinstance(f, dict)):
        return ()
    verify(run)
    return tuple(Path(str(f["path"])) for f in manifest.get("inputs", [])
                 if isinstance(f, dict) and "path" in f)


def load_model(directory) -> SavedModel:
    """Load a model folder written by :func:`save_model` (integrity-checked: its
    metadata, its checksum, and the run folder's manifest around it if any)."""
    directory = Path(directory)
    meta_path, model_path = directory / META_FILE, directory / MODEL_FILE
    if not meta_path.is_file() or not model_path.is_file():
        raise TransferKitInputError(
            f"{directory} is not a transferkit model folder (expected {META_FILE} and "
            f"{MODEL_FILE}); point to the 'model' folder written by 'transferkit run'."
        )
    inputs = _run_inputs(directory)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TransferKitInputError(f"{meta_path} is not valid JSON: {exc}") from None
    meta = _check_metadata(meta, meta_path)
    payload = model_path.read_bytes()
    if hashlib.sha256(payload).hexdigest() != meta.get("sha256"):
        raise TransferKitInputError(
            f"{model_path} does not match the checksum in {META_FILE}: the file is corrupt "
            "or was replaced. Re-run training to write a fresh model."
        )
    if meta.get("sklearn_version") != sklearn.__version__:
        warnings.warn(
            f"Model saved with scikit-learn {meta.get('sklearn_version')}, loading with "
            f"{sklearn.__version__}; predictions may differ.",
            UserWarning,
            stacklevel=2,
        )
    try:
        pipeline = joblib.load(io.BytesIO(payload))
    except Exception as exc:  # noqa: BLE001 - a damaged file of any kind
        raise TransferKitInputError(
            f"{model_path} cannot be read ({type(exc).__name__}): it is truncated or "
            f"damaged. Re-run training to write a fresh model.") from None
    if not hasattr(pipeline, "predict"):
        raise TransferKitInputError(f"{model_path} does not hold a fitted model.")
    return SavedModel(pipeline=pipeline, metadata=meta, inputs=inputs)
