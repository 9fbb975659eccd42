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

Every key is checked before any table is read
(:class:`~transferkit.settings.TaskFileSettings`: types, ranges, one data
layout, no key given twice; a setting the layout would ignore is refused).
Options (all optional): ``task`` (auto/classification/regression), ``metric``,
``positive_label``, ``strategies`` (list of names), ``n_splits``,
``n_repeats``, ``alpha``, ``require_significance``, ``random_state``,
``time_budget`` (seconds or a duration such as ``10m``),
``strategy_time_budget`` (the same, for each fine-tuning strategy), ``racing``,
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
from transferkit.settings import TASK_OPTION_KEYS, TaskFileSettings, validated
from transferkit.validation import TransferKitInputError, check_column

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["TaskSpec", "load_task", "OPTION_KEYS"]

#: Settings a task file may give beside the data (the autopilot's, ``output``, ``name``).
OPTION_KEYS = set(TASK_OPTION_KEYS) | {"output", "name"}


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


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice in one mapping is an error
    (PyYAML would silently keep the last value)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:       # an unhashable key: PyYAML reports it itself
                break
            if duplicate:
                raise TransferKitInputError(
                    f"The setting {key!r} is given twice (line {key_node.start_mark.line + 1}); "
                    f"keep one.")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_config(path: Path) -> TaskFileSettings:
    if not path.is_file():
        raise TransferKitInputError(f"Task file not found: {path}.")
    text = path.read_bytes()
    try:
        if path.suffix.lower() == ".toml":
            config = tomllib.loads(text.decode("utf-8"))
        elif path.suffix.lower() in (".yaml", ".yml"):
            config = yaml.load(text.decode("utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
        else:
            raise TransferKitInputError(
                f"Task file {path} must end in .yaml, .yml or .toml."
            )
    except (yaml.YAMLError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        reason = " ".join(str(exc).split())        # one paragraph
        raise TransferKitInputError(f"Cannot parse task file {path}: {reason}") from None
    except TransferKitInputError as exc:
        raise TransferKitInputError(f"In task file {path}: {exc}") from None
    if not isinstance(config, dict):
        raise TransferKitInputError(f"Task file {path} must hold a mapping of settings.")
    return validated(TaskFileSettings, config, where=f"task file {path}")


IMAGE_COLUMN = "image"


def _read_image_folder(folder: Path, label: str) -> pd.DataFrame:
    from transferkit.datasets.image_folder import load_image_folder

    listing = load_image_folder(folder)
    names = np.asarray(listing.class_names, dtype=object)
    return pd.DataFrame({IMAGE_COLUMN: [str(p) for p in listing.paths],
                         label: names[listing.labels]})


def load_task(path) -> TaskSpec:
    """Read a YAML/TOML task file and the tables it names (settings checked first,
    :class:`~transferkit.settings.TaskFileSettings`)."""
    path = Path(path)
    config = _read_config(path)
    base = path.parent
    named = list(config.sources.values()) if config.sources else []
    named += [config.target] if config.target is not None else []
    folders = any((base / v).is_dir() for v in named)
    if config.label is None and not folders:
        raise TransferKitInputError(f"Task file {path} must name the label column ('label').")
    label = config.label or "label"
    drop = config.drop_columns or []
    inputs: list[Path] = []

    def load(name) -> pd.DataFrame:
        file = (base / name).resolve()
        if file.is_dir():
            return _read_image_folder(file, label)
        inputs.append(file)
        table = read_table(file)
        missing = [c for c in drop if c not in table.columns]
        if missing:
            raise TransferKitInputError(f"drop_columns {missing} are not columns of {file}.")
        return table.drop(columns=drop)

    if config.data is not None:
        X, y = split_table(load(config.data), label=label, domain=config.domain_column,
                           target=config.target_domains, sources=config.source_domains)
    else:
        tables = {name: load(file) for name, file in config.sources.items()}
        target = load(config.target)
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
    options = config.options() | {k: getattr(config, k) for k in ("output", "name")
                                  if getattr(config, k) is not None}
    image_column = config.image_column or (IMAGE_COLUMN if folders else None)
    text_column = config.text_column
    modality = detect_modality(X, text_column=text_column, image_column=image_column)
    column = text_column or image_column
    if modality == "tabular":
        ignored = [k for k in ("backbone", "cache_dir") if getattr(config, k) is not None]
        if ignored:
            raise TransferKitInputError(
                f"{ignored} apply to text and image tasks (with 'text_column' or "
                f"'image_column'); this task is tabular, so they would be ignored. Remove "
                f"them, or name the text or image column.")
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
    cache_dir = config.cache_dir
    if cache_dir is not None:  # like every path in the task file: relative to it
        cache_dir = str((base / cache_dir).resolve())
    return TaskSpec(X=X, y=y, label=label, options=options, inputs=inputs, path=path,
                    modality=modality, column=column, backbone=config.backbone,
                    cache_dir=cache_dir)
