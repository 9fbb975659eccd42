"""Image and text tasks: turn a column of raw inputs into backbone features.

A task's modality is ``"tabular"`` (numbers and categories), ``"text"`` (a
column of strings) or ``"image"`` (a column of image file paths).  For text
and image tasks :class:`ColumnFeatureExtractor` runs a frozen pretrained
backbone (:class:`~transferkit.backbones.FeatureExtractor`) over that column,
and every registered strategy then runs on the features.  The default
backbones are MobileNetV2 (ImageNet) for images and all-MiniLM-L6-v2 for
text, both loaded from offline packages.

:class:`ColumnFeatureExtractor` is a stateless scikit-learn transformer, so
a fitted model saved as ``Pipeline([("extract", ColumnFeatureExtractor(...)),
("model", fitted_pipeline)])`` predicts straight from raw inputs.

Example
-------
>>> import pandas as pd
>>> from transferkit.featurize import detect_modality
>>> detect_modality(pd.DataFrame({"x": [1.0, 2.0]}))
'tabular'
>>> detect_modality(pd.DataFrame({"review": ["a long enough review text"] * 2}),
...                 text_column="review")
'text'
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.metaestimators import available_if

from transferkit.validation import TransferKitInputError, check_column

__all__ = ["MODALITIES", "DEFAULT_BACKBONES", "detect_modality", "ColumnFeatureExtractor",
           "RawInputModel"]

MODALITIES = ("tabular", "text", "image")
DEFAULT_BACKBONES = {"image": "mobilenet_v2", "text": "all-MiniLM-L6-v2"}


def detect_modality(X, text_column: str | None = None, image_column: str | None = None) -> str:
    """``"image"`` / ``"text"`` when the task names such a column, else ``"tabular"``."""
    if text_column is not None and image_column is not None:
        raise TransferKitInputError("Give either a text column or an image column, not both.")
    for column, modality in ((text_column, "text"), (image_column, "image")):
        if column is not None:
            if not isinstance(X, pd.DataFrame):
                raise TransferKitInputError(
                    f"A {modality} column needs a table (DataFrame), got {type(X).__name__}."
                )
            check_column(X, column, modality)
            return modality
    return "tabular"


class ColumnFeatureExtractor(TransformerMixin, BaseEstimator):
    """Backbone features of one text or image-path column of a DataFrame.

    Parameters
    ----------
    column : str
        The column holding texts or image file paths.
    modality : {"text", "image"}
    backbone : str, optional
        Registered backbone name or ``"hf:<path-or-id>"``; default per
        modality (:data:`DEFAULT_BACKBONES`).
    base_dir : str, optional
        Folder that relative image paths are resolved against.
    batch_size : int, default=32
    cache_dir : str, optional
        On-disk feature cache (see :class:`~transferkit.backbones.FeatureExtractor`).
    progress : bool, default=False

    Attributes
    ----------
    extractor_ : FeatureExtractor
    n_features_out_ : int (after the first transform)
    """

    def __init__(self, column, modality, backbone=None, base_dir=None, batch_size=32,
                 cache_dir=None, progress=False):
        self.column = column
        self.modality = modality
        self.backbone = backbone
        self.base_dir = base_dir
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.progress = progress

    def fit(self, X=None, y=None):
        from transferkit.backbones import FeatureExtractor

        if self.modality not in ("text", "image"):
            raise TransferKitInputError(
                f"modality must be 'text' or 'image', got {self.modality!r}."
            )
        self.extractor_ = FeatureExtractor(
            backbone=self.backbone or DEFAULT_BACKBONES[self.modality],
            batch_size=self.batch_size, cache_dir=self.cache_dir, progress=self.progress,
        ).fit()
        return self

    def transform(self, X):
        if not hasattr(self, "extractor_"):
            self.fit()
        features = np.asarray(self.extractor_.transform(self.raw_inputs(X)),
                              dtype=np.float32)
        self.n_features_out_ = features.shape[1]
        return features

    def raw_inputs(self, X) -> list:
        """The column's texts, or its image paths resolved against ``base_dir``: what
        the backbone reads (and what fine-tuning strategies train on)."""
        if not isinstance(X, pd.DataFrame):
            raise TransferKitInputError(
                f"ColumnFeatureExtractor needs a DataFrame with column {self.column!r}."
            )
        check_column(X, self.column, self.modality)
        values = X[self.column]
        if self.modality == "image":
            return [self._resolve(v) for v in values]
        return values.tolist()

    def _resolve(self, value) -> str:
        if not isinstance(value, (str, Path)) or str(value).strip() == "":
            raise TransferKitInputError(
                f"Image column {self.column!r} holds {value!r}; expected an image file path."
            )
        path = Path(value).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = Path(self.base_dir) / path
        return str(path)


class RawInputModel(BaseEstimator):
    """A model over backbone features whose members may also need the raw inputs.

    ``predict(table)`` extracts the features of ``table``'s column with
    ``extract`` (a fitted :class:`ColumnFeatureExtractor`) and calls
    ``model.predict(features, raw=...)`` with the column's texts or resolved
    image paths: what an autopilot model with a fine-tuned member
    (``model.needs_raw``) predicts from.  ``extract__base_dir`` sets where
    relative image paths are resolved.
    """

    def __init__(self, extract, model):
        self.extract = extract
        self.model = model

    @property
    def classes_(self):
        return self.model.classes_

    def _inputs(self, X):
        return self.extract.transform(X), self.extract.raw_inputs(X)

    def predict(self, X):
        features, raw = self._inputs(X)
        return self.model.predict(features, raw=raw)

    @available_if(lambda self: hasattr(self.model, "predict_proba"))
    def predict_proba(self, X):
        features, raw = self._inputs(X)
        return self.model.predict_proba(features, raw=raw)
