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

Options (all optional): ``task`` (auto/classification/regression), ``metric``,
``positive_label``, ``strategies`` (list of names), ``n_splits``,
``n_repeats``, ``alpha``, ``require_significance``, ``random_state``,
``output`` (folder, relative to the task file).

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

import pandas as pd
import yaml

from transferkit.domains import split_table, stack_domains
from transferkit.io import read_table
from transferkit.validation import TransferKitInputError, check_column

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["TaskSpec", "load_task", "OPTION_KEYS"]

DATA_KEYS = {"data", "label", "domain_column", "target_domains", "source_domains",
             "sources", "target", "drop_columns"}
OPTION_KEYS = {"task", "metric", "positive_label", "strategies", "n_splits", "n_repeats",
               "alpha", "require_significance", "random_state", "output", "name"}


@dataclass
class TaskSpec:
    """A loaded task: stacked features, tagged labels, options and input paths."""

    X: pd.DataFrame
    y: pd.DataFrame
    label: str
    options: dict
    inputs: list = field(default_factory=list)
    path: Path | None = None


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
    if "label" not in config:
        raise TransferKitInputError(f"Task file {path} must name the label column ('label').")
    return config


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def load_task(path) -> TaskSpec:
    """Read a YAML/TOML task file and the tables it names."""
    path = Path(path)
    config = _read_config(path)
    base = path.parent
    label = str(config["label"])
    drop = _as_list(config.get("drop_columns", []))
    inputs: list[Path] = []

    def load(name) -> pd.DataFrame:
        file = (base / str(name)).resolve()
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
    return TaskSpec(X=X, y=y, label=label, options=options, inputs=inputs, path=path)
