"""Task files: a YAML or TOML description of a transfer task.

One table with a domain column::

    data: loans.csv            # CSV, TSV or Parquet; paths relative to this file
    label: Class
    domain_column: addr_state
    target_domains: [WY, VT]   # rows of these domains form the target
    source_domains: [CA, TX]   # optional: default every other domain

or separate files::

    sources: {CA: ca.csv, TX: tx.csv}   # or a list of files, or one file
    target: small_state.csv             # unlabelled rows: empty label cell;
                                        # no label column = unlabelled target
    label: Class

Text and images: ``text_column: review`` (a column of strings) or
``image_column: path`` (a column of image paths, relative to the task file)
makes it a text or image task: a frozen backbone (``backbone:``, default
MobileNetV2 for images and all-MiniLM-L6-v2 for text; ``cache_dir:`` for the
feature cache, relative to the task file) turns that column into features first.  A source or target
given as a *folder* with one sub-folder per class is an image folder: its
files become an ``image`` column and the sub-folder names the labels.

Options (all optional): ``task`` (auto/classification/regression), ``metric``,
``positive_label``, ``strategies`` (list of names), ``n_splits``,
``n_repeats``, ``alpha``, ``require_significance``, ``random_state``,
``time_budget`` (seconds or a duration such as ``10m``), ``racing``,
``max_source_rows`` (a number, or ``null`` for every source row), ``output``
(folder, relative to the task file).

Example
-------
>>> from transferkit.taskfile import load_task   # doctest: +SKIP
>>> spec = load_task("task.yaml")                # doctest: +SKIP
>>> spec.X.shape, spec.options["metric"]         # doctest: +SKIP
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from transferkit.domains import split_table, stack_domains
from transferkit.featurize import detect_modality
from transferkit.io import read_table
from transferkit.validation import TransferKitInputError, check_column

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["TaskSpec", "load_task", "OPTION_KEYS"]

DATA_KEYS = {"data", "label", "domain_column", "target_domains", "source_domains",
             "sources", "target", "drop_columns", "text_column", "image_column", "backbone",
             "cache_dir"}
OPTION_KEYS = {"task", "metric", "positive_label", "strategies", "n_splits", "n_repeats",
               "alpha", "require_significance", "random_state", "output", "name",
               "time_budget", "racing", "max_source_rows"}


@dataclass
class TaskSpec:
    """A loaded task: stacked features, tagged labels, options and input paths.

    ``modality`` is "tabular", "text" or "image"; for the last two
    ``column`` names the raw input column and ``backbone``/``cache_dir`` the
    feature extraction settings.
    """

    X: pd.DataFrame
    y: pd.DataFrame
    label: str
    options: dict
    inputs: list = field(default_factory=list)
    path: Path | None = None
    modality: str = "tabular"
    column: str | None = None
    backbone: str | None = None
    cache_dir: str | None = None


def _read_config(path: Path) -> dict:
    if not path.is_file():
        raise TransferKitInputError(f"Task file not found: {path}.")
    text = path.read_bytes()
    try:
        if path.suffix.lower() == ".toml":
            config = tomllib.loads(text.decode("utf-8"))
        elif path.suffix.lower() in (".yaml", ".yml"):
            config = yaml.safe_load(text.decode("utf-8"))
        else:
            raise TransferKitInputError(
                f"Task file {path} must end in .yaml, .yml or .toml."
            )
    except (yaml.YAMLError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TransferKitInputError(f"Cannot parse task file {path}: {exc}") from None
    if not isinstance(config, dict):
        raise TransferKitInputError(f"Task file {path} must hold a mapping of settings.")
    unknown = sorted(set(config) - DATA_KEYS - OPTION_KEYS)
    if unknown:
        raise TransferKitInputError(
            f"Unknown setting(s) {unknown} in {path}; valid settings: "
            f"{sorted(DATA_KEYS | OPTION_KEYS)}."
        )
    return config


IMAGE_COLUMN = "image"


def _read_image_folder(folder: Path, label: str) -> pd.DataFrame:
    from transferkit.datasets.image_folder import load_image_folder

    listing = load_image_folder(folder)
    names = np.asarray(listing.class_names, dtype=object)
    return pd.DataFrame({IMAGE_COLUMN: [str(p) for p in listing.paths],
                         label: names[listing.labels]})


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def load_task(path) -> TaskSpec:
    """Read a YAML/TOML task file and the tables it names."""
    path = Path(path)
    config = _read_config(path)
    base = path.parent
    folders = any((base / str(v)).is_dir() for v in _named_inputs(config))
    if "label" not in config and not folders:
        raise TransferKitInputError(f"Task file {path} must name the label column ('label').")
    label = str(config.get("label", "label"))
    drop = _as_list(config.get("drop_columns", []))
    inputs: list[Path] = []

    def load(name) -> pd.DataFrame:
        file = (base / str(name)).resolve()
        if file.is_dir():
            return _read_image_folder(file, label)
        inputs.append(file)
        table = read_table(file)
        missing = [c for c in drop if c not in table.columns]
        if missing:
            raise TransferKitInputError(f"drop_columns {missing} are not columns of {file}.")
        return table.drop(columns=drop)

    if "data" in config:
        if "sources" in config or "target" in config:
            raise TransferKitInputError(
                "Use either 'data' (one table with a domain column) or 'sources' + "
                "'target' (separate files), not both."
            )
        for key in ("domain_column", "target_domains"):
            if key not in config:
                raise TransferKitInputError(f"With 'data', the task file must set '{key}'.")
        X, y = split_table(load(config["data"]), label=label,
                           domain=str(config["domain_column"]),
                           target=_as_list(config["target_domains"]),
                           sources=(_as_list(config["source_domains"])
                                    if config.get("source_domains") is not None else None))
    elif "sources" in config and "target" in config:
        raw = config["sources"]
        named = raw if isinstance(raw, dict) else {
            Path(str(p)).stem: p for p in _as_list(raw)}
        tables = {str(k): load(v) for k, v in named.items()}
        target = load(config["target"])
        for name, table in tables.items():
            try:
                check_column(table, label, "label")
            except TransferKitInputError as exc:
                raise TransferKitInputError(f"In source {name!r}: {exc}") from None
        X_source = {k: t.drop(columns=[label]) for k, t in tables.items()}
        y_source = {k: t[label] for k, t in tables.items()}
        # A target file without the label column is an unlabelled target.
        y_target = target[label] if label in target.columns else None
        X, y = stack_domains(X_source, y_source, target.drop(columns=[label], errors="ignore"),
                             y_target)
    else:
        raise TransferKitInputError(
            "The task file must give the data: either 'data' with 'domain_column' and "
            "'target_domains', or 'sources' and 'target'."
        )
    options = {k: config[k] for k in OPTION_KEYS if k in config}
    image_column = config.get("image_column", IMAGE_COLUMN if folders else None)
    text_column = config.get("text_column")
    modality = detect_modality(X, text_column=text_column, image_column=image_column)
    column = text_column or image_column
    if modality == "image":
        # Relative image paths are relative to the task file.
        X = X.assign(**{column: [str((base / str(p)).resolve()) if isinstance(p, str)
                                 else p for p in X[column]]})
    if modality != "tabular":
        extra = [c for c in X.columns if c != column]
        if extra:
            raise TransferKitInputError(
                f"A {modality} task uses only its {column!r} column; the data also has "
                f"{extra[:10]}. Drop them with 'drop_columns'."
            )
    cache_dir = config.get("cache_dir")
    if cache_dir is not None:  # like every path in the task file: relative to it
        cache_dir = str((base / str(cache_dir)).resolve())
    return TaskSpec(X=X, y=y, label=label, options=options, inputs=inputs, path=path,
                    modality=modality, column=column, backbone=config.get("backbone"),
                    cache_dir=cache_dir)


def _named_inputs(config: dict) -> list:
    raw = config.get("sources", [])
    names = list(raw.values()) if isinstance(raw, dict) else _as_list(raw)
    return names + ([config["target"]] if "target" in config else [])
