"""Text inputs for the text backbones: validation, decoding and file loading.

:func:`as_texts` turns what users hand over (a list/tuple/array/Series of
strings, a DataFrame plus a column name, or ``bytes``) into a plain
``list[str]``, with a :class:`~transferkit.validation.TransferKitInputError`
that says what to fix for anything else.  :func:`load_text_column` reads
one text column of a CSV/TSV/Parquet file.

Decisions (tested in ``tests/test_backbones_text.py``):

* **Empty strings are valid.**  A BERT-style tokenizer encodes ``""`` as the
  two-token sequence ``[CLS] [SEP]``; the encoder then returns the pooled
  embedding of that sequence, a fixed vector shared by all empty texts.
  Rows are never dropped silently, so ``transform`` keeps one output row per
  input row.  Whitespace-only strings are treated the same way (the
  tokenizer removes the whitespace).
* **Missing values are errors.**  ``None``/``NaN`` (e.g. an empty CSV cell)
  raise with the row positions; fill them first (``df[col].fillna("")``)
  if an empty text is what you mean.
* **Non-string values are errors** (numbers, lists): convert them yourself
  (``df[col].astype(str)``) so numbers are not embedded by accident.
* **Bytes are decoded as UTF-8, strictly by default**: invalid UTF-8 raises
  an error naming the row and byte offset.  Pass ``errors="replace"`` to
  substitute U+FFFD for the invalid bytes instead (Python's codec error
  handlers).  ``str`` values that cannot be encoded to UTF-8 (lone
  surrogates, e.g. from ``surrogateescape`` decoding) get the same
  treatment.

Example
-------
>>> from transferkit.backbones.text import as_texts
>>> as_texts(["a cat", b"caf\\xc3\\xa9", ""])
['a cat', 'café', '']
>>> import pandas as pd
>>> as_texts(pd.DataFrame({"review": ["good", "bad"]}), column="review")
['good', 'bad']
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import pandas as pd

from transferkit.validation import TransferKitInputError, check_column

__all__ = ["as_texts", "load_text_column", "is_text_input"]

_ERRORS = ("strict", "replace", "ignore", "backslashreplace")


def _is_missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and value != value  # NaN


def _decode(value: bytes, i: int, errors: str) -> str:
    try:
        return bytes(value).decode("utf-8", errors=errors)
    except UnicodeDecodeError as exc:
        raise TransferKitInputError(
            f"Text item {i} is not valid UTF-8 (byte {exc.start}: {exc.reason}). Decode it "
            "yourself with the right encoding (e.g. b.decode('latin-1')), or pass "
            "errors='replace' to substitute U+FFFD for invalid bytes."
        ) from None


def _check_utf8(text: str, i: int, errors: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        if errors == "strict":
            raise TransferKitInputError(
                f"Text item {i} contains characters that are not valid Unicode text "
                f"(position {exc.start}: {exc.reason}, e.g. a lone surrogate from "
                "'surrogateescape' decoding). Fix the decoding of your data, or pass "
                "errors='replace'."
            ) from None
        text = text.encode("utf-8", errors=errors).decode("utf-8")
    return text


def is_text_input(inputs) -> bool:
    """Heuristic used by the extractor: does ``inputs`` look like texts?"""
    if isinstance(inputs, (str, bytes)):
        return True
    if isinstance(inputs, pd.DataFrame):
        return True
    if isinstance(inputs, pd.Series):
        return inputs.dtype == object or pd.api.types.is_string_dtype(inputs.dtype)
    if isinstance(inputs, np.ndarray):
        return inputs.dtype.kind in "USO" and inputs.ndim == 1
    if isinstance(inputs, (list, tuple)) and inputs:
        return isinstance(inputs[0], (str, bytes))
    return False


def as_texts(inputs, column: str | None = None, errors: str = "strict") -> list[str]:
    """Validate text inputs and return them as a ``list[str]``.

    Parameters
    ----------
    inputs : sequence of str/bytes, numpy array, pandas Series or DataFrame
        One text per row.  A DataFrame needs ``column``.  A single ``str`` is
        refused (it would otherwise be read as a sequence of characters).
    column : str, optional
        Column of a DataFrame holding the texts.
    errors : {"strict", "replace", "ignore", "backslashreplace"}
        What to do with bytes that are not valid UTF-8 (see module notes).

    Returns
    -------
    list of str
    """
    if errors not in _ERRORS:
        raise TransferKitInputError(f"errors must be one of {_ERRORS}, got {errors!r}.")
    if isinstance(inputs, (str, bytes)):
        raise TransferKitInputError(
            "Got a single string; pass a list of texts, e.g. [text] for one text."
        )
    if isinstance(inputs, pd.DataFrame):
        if column is None:
            raise TransferKitInputError(
                "Got a DataFrame: say which column holds the texts (column=..., one of "
                f"{list(map(str, inputs.columns))[:20]})."
            )
        check_column(inputs, column, "text")
        values = inputs[column].tolist()
    elif column is not None and not isinstance(inputs, pd.DataFrame):
        raise TransferKitInputError("column= is only used with a DataFrame input.")
    elif isinstance(inputs, pd.Series):
        values = inputs.tolist()
    elif isinstance(inputs, np.ndarray):
        if inputs.ndim != 1:
            raise TransferKitInputError(
                f"Texts must be one-dimensional (one text per row); got an array of shape "
                f"{inputs.shape}."
            )
        values = inputs.tolist()
    elif isinstance(inputs, Iterable):
        values = list(inputs)
    else:
        raise TransferKitInputError(
            f"Expected a list of texts or a DataFrame with a text column, got "
            f"{type(inputs).__name__}."
        )
    out: list[str] = []
    missing, wrong = [], []
    for i, value in enumerate(values):
        if isinstance(value, str):
            out.append(_check_utf8(value, i, errors))
        elif isinstance(value, (bytes, bytearray, memoryview, np.bytes_)):
            out.append(_check_utf8(_decode(value, i, errors), i, errors))
        elif _is_missing(value):
            missing.append(i)
        else:
            wrong.append((i, type(value).__name__))
    if missing:
        raise TransferKitInputError(
            f"{len(missing)} text value(s) are missing (None/NaN) at rows {missing[:10]}"
            f"{' ...' if len(missing) > 10 else ''}. Drop those rows or fill them "
            "(e.g. df[col].fillna('')) if an empty text is meant."
        )
    if wrong:
        i, name = wrong[0]
        raise TransferKitInputError(
            f"{len(wrong)} value(s) are not text, e.g. row {i} is a {name}. Texts must be str "
            "(or UTF-8 bytes); convert deliberately, e.g. df[col].astype(str)."
        )
    return out


def load_text_column(path: str | os.PathLike, column: str, errors: str = "strict") -> list[str]:
    """Read the texts of ``column`` from a CSV/TSV or Parquet file.

    Empty CSV cells are read as empty strings (not NaN); everything else
    goes through :func:`as_texts`.

    Example
    -------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("id,text\\n1,hello\\n2,\\n")
    >>> load_text_column(p, "text")
    ['hello', '']
    """
    from pathlib import Path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt") and path.is_file():
        sep = "\t" if suffix == ".tsv" else ","
        try:
            header = pd.read_csv(path, sep=sep, nrows=0)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise TransferKitInputError(f"Cannot read {path}: {exc}") from None
        check_column(header, column, "text")
        try:
            table = pd.read_csv(path, sep=sep, usecols=[column], dtype={column: str},
                                keep_default_na=False, encoding_errors=errors)
        except UnicodeDecodeError as exc:
            raise TransferKitInputError(
                f"{path} is not valid UTF-8 ({exc.reason} at byte {exc.start}). Re-save it as "
                "UTF-8 or pass errors='replace'."
            ) from None
    else:
        from transferkit.io import read_table

        table = read_table(path)
    return as_texts(table, column=column, errors=errors)
