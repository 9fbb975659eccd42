"""Reading user tables and writing outputs atomically.

* :func:`read_table` reads CSV or Parquet with clear errors for a missing,
  empty, unreadable or unsupported file.
* :func:`write_atomic` writes bytes or text through a temporary file in the
  destination folder and ``os.replace``, so a crash never leaves a
  half-written file, and it refuses to write over a file the caller marks as
  an input.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from transferkit.validation import TransferKitInputError, check_unique_columns

__all__ = ["read_table", "write_atomic", "write_json", "write_table"]

_READERS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV/TSV or Parquet file into a DataFrame.

    Raises :class:`TransferKitInputError` naming the file and the problem.
    """
    path = Path(path)
    if not path.exists():
        raise TransferKitInputError(f"File not found: {path}. Check the path.")
    if path.is_dir():
        raise TransferKitInputError(f"{path} is a folder; expected a CSV or Parquet file.")
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise TransferKitInputError(
            f"Cannot read {path}: unsupported file type {path.suffix!r}. Use .csv, .tsv or "
            ".parquet."
        )
    if path.stat().st_size == 0:
        raise TransferKitInputError(f"{path} is empty (0 bytes).")
    try:
        if kind == "parquet":
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, sep="\t" if kind == "tsv" else ",")
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise TransferKitInputError(
            f"Cannot read {path} as {kind.upper()}: {type(exc).__name__}: {exc}"
        ) from None
    if table.shape[0] == 0:
        raise TransferKitInputError(f"{path} has a header but no rows.")
    if kind != "parquet":
        _check_header(path, kind, table)
    _check_stray_text(path, table)
    return table


def _check_header(path: Path, kind: str, table: pd.DataFrame) -> None:
    """A header naming a column twice (pandas would rename the second ``x.1``)."""
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        header = next(csv.reader(handle, delimiter="\t" if kind == "tsv" else ","), [])
    check_unique_columns(header, f"The header of {path}")


#: A text column whose cells are numbers but for at most this share is taken for a
#: numeric column with a few stray cells.
STRAY_SHARE = 0.05


def _check_stray_text(path: Path, table: pd.DataFrame) -> None:
    """A numeric column with a few text cells (a typo, ``?``, ``n/a``) would silently
    become a category column: name those cells instead."""
    for column in table.columns:
        values = table[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
            continue
        given = values.dropna()
        if len(given) < 10:
            continue
        numbers = pd.to_numeric(given, errors="coerce")
        stray = given[numbers.isna()]
        if 0 < len(stray) <= STRAY_SHARE * len(given):
            rows = [int(i) for i in stray.index[:5]]
            cells = [str(v) for v in stray.iloc[:5]]
            raise TransferKitInputError(
                f"Column {column!r} of {path} holds numbers but for {len(stray)} cell(s) "
                f"(rows {rows}, counting from 0 after the header: {cells}); fix those cells "
                f"or leave them empty to mark them missing.")


def write_atomic(path: str | os.PathLike, data: bytes | str, protect=()) -> Path:
    """Write ``data`` to ``path`` atomically; never over a path in ``protect``."""
    path = Path(path)
    for protected in protect:
        if Path(protected).exists() and path.exists() and path.samefile(protected):
            raise TransferKitInputError(
                f"Refusing to write to {path}: it is one of the input files. Choose another "
                "output path."
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json(path: str | os.PathLike, payload, protect=()) -> Path:
    """Write JSON atomically (``NaN`` written as ``null``)."""
    return write_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n", protect)


def write_table(path: str | os.PathLike, table: pd.DataFrame, protect=()) -> Path:
    """Write a DataFrame as CSV or Parquet (by extension) atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        data = table.to_parquet(index=False)
    elif suffix in (".csv", ".tsv", ".txt"):
        data = table.to_csv(index=False, sep="\t" if suffix == ".tsv" else ",")
    else:
        raise TransferKitInputError(
            f"Unsupported output type {suffix!r} for {path}; use .csv, .tsv or .parquet."
        )
    return write_atomic(path, data, protect)
