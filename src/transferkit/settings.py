"""Typed settings: every autopilot option, task-file key and CLI option through one schema.

The schema is a set of pydantic v2 models in strict mode: a field takes only
its own type (``require_significance: 'no'`` and ``5`` are refused, not read
as booleans; ``random_state: 1.5`` or ``abc`` are refused, not rounded or
crashed on), every range is checked (``random_state`` in
:math:`[0, 2^{32}-1]`, ``alpha`` in :math:`(0, 1)`, ``n_jobs`` not 0), and a
list setting given as something else is refused (``strategies: 5``,
``strategies: {pooled: 1}``, an empty ``strategies: []``) except where a
single value is wrapped on purpose and documented (``target_domains: WY``
means ``[WY]``).  Column names and domain values may be written as numbers in
YAML (``label: 2019``) and are then read as their text, as they are in a
CSV header.

:func:`validated` turns a :class:`pydantic.ValidationError` into one
:class:`~transferkit.validation.TransferKitInputError` whose message names
each bad setting, the value given and what is allowed.

Example
-------
>>> settings = validated(AutopilotSettings, {"n_repeats": 2, "alpha": 0.1})
>>> settings.n_repeats, settings.selection
(2, 'ensemble')
>>> validated(AutopilotSettings, {"require_significance": "no"})
Traceback (most recent call last):
...
transferkit.validation.TransferKitInputError: Invalid setting: require_significance: got 'no' (str); expected: true or false.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from transferkit.validation import TransferKitInputError, repeated

__all__ = ["AutopilotSettings", "TaskFileSettings", "ShiftSettings", "TrainSettings", "validated",
           "MAX_SEED", "TASK_OPTION_KEYS"]

#: Largest seed numpy's and scikit-learn's generators take.
MAX_SEED = 2**32 - 1


def _plain(value):
    """numpy scalars as the Python scalars they hold (an np.int64 seed is a seed)."""
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _allowed(text: str):
    """Field metadata: ``text`` is what the error message says is allowed."""
    return Field(json_schema_extra={"allowed": text})


Seed = Annotated[StrictInt, Field(ge=0, le=MAX_SEED),
                 _allowed(f"a whole number from 0 to {MAX_SEED}")]
Number = StrictInt | StrictFloat


def _scalar_label(value):
    value = _plain(value)
    if isinstance(value, float) and not np.isfinite(value):
        raise ValueError("a single class label (not NaN or infinite)")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ValueError("a single class label")


def _name(value):
    """A column name: text, or a whole number read as its text."""
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("a column name")
    text = str(value)
    if not text.strip():
        raise ValueError("a non-empty column name")
    return text


def _names(value):
    """One or more column names; a single name is wrapped into a list."""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [_name(value)]
    if not isinstance(value, (list, tuple)):
        raise ValueError("a list of column names")
    return [_name(v) for v in value]


def _domain_values(value):
    """One or more domain values; a single value is wrapped; text, numbers, no
    two equal after being turned into text."""
    values = [value] if isinstance(value, (str, int, float)) and not isinstance(
        value, bool) else value
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError("a domain value or a non-empty list of them")
    out = []
    for v in values:
        v = _plain(v)
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise ValueError("domain values that are text or numbers")
        if isinstance(v, float) and not np.isfinite(v):
            raise ValueError("domain values that are not NaN or infinite")
        out.append(v)
    if repeated(out):
        raise ValueError("domain values that differ from each other (as text)")
    return out


ColumnName = Annotated[str, BeforeValidator(_name), _allowed("a column name")]
ColumnNames = Annotated[list, BeforeValidator(_names),
                        _allowed("a column name or a list of column names")]
DomainValues = Annotated[list, BeforeValidator(_domain_values),
                         _allowed("a domain value or a non-empty list of distinct values")]
Label = Annotated[Any, BeforeValidator(_scalar_label),
                  _allowed("a single class label (text, number or boolean)")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)

    @model_validator(mode="before")
    @classmethod
    def _numpy_scalars(cls, data):
        return {k: _plain(v) for k, v in data.items()} if isinstance(data, dict) else data


def _check_strategies(value):
    from transferkit.autopilot.registry import Strategy

    if value is None:
        return None
    if isinstance(value, (str, Strategy)) or not isinstance(value, (list, tuple)):
        raise ValueError("a non-empty list of strategy names")
    if not value:
        raise ValueError("a non-empty list of strategy names (null runs every strategy)")
    if not all(isinstance(v, (str, Strategy)) for v in value):
        raise ValueError("strategy names (text) or Strategy objects")
    return list(value)


def _check_duration(value):
    from transferkit.autopilot.budget import parse_duration

    try:
        parse_duration(value)
    except TransferKitInputError:
        raise ValueError("a positive number of seconds, a duration such as '90s' or '10m', "
                         "or null for no limit") from None
    return value


def _check_source_rows(value):
    from transferkit.autopilot.source_subsample import check_max_source_rows

    try:
        return check_max_source_rows(value)
    except TransferKitInputError:
        raise ValueError("a whole number of at least 1, or null for every source row") \
            from None


def _check_metric(value):
    from transferkit.evaluation import METRICS

    if value is not None and (not isinstance(value, str) or value not in METRICS):
        raise ValueError(f"one of {sorted(METRICS)}")
    return value


class AutopilotSettings(_Strict):
    """The options of :class:`~transferkit.autopilot.Autopilot` (see its docstring)."""

    strategies: Annotated[Any, BeforeValidator(_check_strategies),
                          _allowed("a non-empty list of strategy names, or null for "
                                   "every applicable strategy")] = None
    metric: Annotated[StrictStr | None, BeforeValidator(_check_metric),
                      _allowed("a metric name of transferkit.evaluation.METRICS")] = None
    task: Annotated[Literal["auto", "classification", "regression"],
                    _allowed("'auto', 'classification' or 'regression'")] = "auto"
    positive_label: Label = None
    n_splits: Annotated[StrictInt, Field(ge=2, le=100),
                        _allowed("a whole number from 2 to 100")] = 5
    n_repeats: Annotated[StrictInt, Field(ge=1, le=100),
                         _allowed("a whole number from 1 to 100")] = 3
    alpha: Annotated[Number, Field(gt=0, lt=1), _allowed("a number between 0 and 1")] = 0.05
    require_significance: Annotated[StrictBool, _allowed("true or false")] = False
    preprocess: Annotated[StrictBool, _allowed("true or false")] = True
    shift_permutations: Annotated[StrictInt, Field(ge=1, le=1_000_000),
                                  _allowed("a whole number from 1 to 1000000")] = 500
    n_jobs: Annotated[StrictInt | None, Field(ge=-1024, le=1024),
                      _allowed("a whole number of workers, -1 for every core, None for "
                               "one (not 0)")] = -1
    random_state: Seed = 0
    progress: Annotated[StrictBool, _allowed("true or false")] = False
    modality: Annotated[Literal["tabular", "text", "image"],
                        _allowed("'tabular', 'text' or 'image'")] = "tabular"
    selection: Annotated[Literal["ensemble", "best"], _allowed("'ensemble' or 'best'")] = \
        "ensemble"
    n_boot: Annotated[StrictInt, Field(ge=50, le=100_000),
                      _allowed("a whole number of bootstrap samples from 50 to 100000")] = 300
    time_budget: Annotated[Any, BeforeValidator(_check_duration),
                           _allowed("a positive number of seconds, a duration such as "
                                    "'90s' or '10m', or null for no limit")] = 600.0
    racing: Annotated[StrictBool, _allowed("true or false")] = False
    max_source_rows: Annotated[Any, BeforeValidator(_check_source_rows),
                               _allowed("a whole number of at least 1, or null for every "
                                        "source row")] = 20_000
    backbone: Annotated[StrictStr | None, Field(min_length=1),
                        _allowed("a backbone name (text), or null for the modality's "
                                 "default")] = None
    strategy_time_budget: Annotated[Any, BeforeValidator(_check_duration),
                                    _allowed("a positive number of seconds, a duration such "
                                             "as '90s' or '4m', or null for no limit")] = 240.0

    @field_validator("n_jobs")
    @classmethod
    def _not_zero(cls, value):
        if value == 0:
            raise ValueError("a whole number of workers, -1 for every core, None for one "
                             "(not 0)")
        return value


#: The autopilot options a task file may set.
TASK_OPTION_KEYS = ("task", "metric", "positive_label", "strategies", "n_splits",
                    "n_repeats", "alpha", "require_significance", "random_state",
                    "time_budget", "racing", "max_source_rows", "strategy_time_budget")

_TEXT = Annotated[StrictStr, Field(min_length=1)]
#: Task-file keys that name files, columns or domains: null is never meaningful.
_NOT_NULL = ("data", "label", "domain_column", "target_domains", "source_domains", "sources",
             "target", "drop_columns", "text_column", "image_column", "backbone", "cache_dir",
             "output", "name")


def _sources(value):
    """``sources``: one file, a list of files or a mapping name -> file; the
    names (a file's stem when not given) must stay distinct as text."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)):
        if not value or not all(isinstance(v, str) and v for v in value):
            raise ValueError("a file, a non-empty list of files, or a mapping name -> file")
        from pathlib import Path

        stems = [Path(v).stem for v in value]
        twice = repeated(stems)
        if twice:
            raise ValueError(f"files whose names differ (several are called {twice}; give "
                             f"a mapping name -> file to name each source)")
        return dict(zip(stems, value))
    if isinstance(value, dict):
        if not value or not all(isinstance(v, str) and v for v in value.values()):
            raise ValueError("a mapping name -> file with at least one source")
        names = [str(k) for k in value]
        if repeated(names):
            raise ValueError("source names that differ as text (1 and '1' are the same name)")
        if any(not n.strip() for n in names):
            raise ValueError("non-empty source names")
        return {str(k): v for k, v in value.items()}
    raise ValueError("a file, a list of files, or a mapping name -> file")


class TaskFileSettings(_Strict):
    """Every key a task file may hold (:mod:`transferkit.taskfile`), checked before
    any table is read."""

    data: Annotated[_TEXT | None, _allowed("a file name")] = None
    label: Annotated[ColumnName | None, _allowed("a column name")] = None
    domain_column: Annotated[ColumnName | None, _allowed("a column name")] = None
    target_domains: Annotated[DomainValues | None, _allowed("a domain value or a non-empty list of them")] = None
    source_domains: Annotated[DomainValues | None, _allowed("a domain value or a non-empty list of them")] = None
    sources: Annotated[Any, BeforeValidator(_sources),
                       _allowed("a file, a list of files, or a mapping name -> file")] = None
    target: Annotated[_TEXT | None, _allowed("a file name")] = None
    drop_columns: Annotated[ColumnNames | None, _allowed("a column name or a list of column names")] = None
    text_column: Annotated[ColumnName | None, _allowed("a column name")] = None
    image_column: Annotated[ColumnName | None, _allowed("a column name")] = None
    backbone: Annotated[_TEXT | None, _allowed("a backbone name (text)")] = None
    cache_dir: Annotated[_TEXT | None, _allowed("a folder name")] = None
    output: Annotated[_TEXT | None, _allowed("a folder name")] = None
    name: Annotated[_TEXT | None, _allowed("non-empty text")] = None
    # the autopilot options (AutopilotSettings checks their values)
    task: Any = None
    metric: Any = None
    positive_label: Any = None
    strategies: Any = None
    n_splits: Any = None
    n_repeats: Any = None
    alpha: Any = None
    require_significance: Any = None
    random_state: Any = None
    time_budget: Any = None
    racing: Any = None
    max_source_rows: Any = None
    strategy_time_budget: Any = None

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data):
        if isinstance(data, dict):
            empty = sorted(k for k in _NOT_NULL if k in data and data[k] is None)
            if empty:
                raise ValueError(f"{empty} are empty (null); give a value or leave the "
                                 f"key out")
        return data

    @model_validator(mode="after")
    def _one_layout(self):
        given = self.model_fields_set
        if self.data is not None:
            if self.sources is not None or self.target is not None:
                raise ValueError("use either 'data' (one table with a domain column) or "
                                 "'sources' + 'target' (separate files), not both")
            for key in ("domain_column", "target_domains"):
                if key not in given:
                    raise ValueError(f"with 'data', the task file must set '{key}'")
        elif self.sources is not None and self.target is not None:
            ignored = sorted(given & {"domain_column", "target_domains", "source_domains"})
            if ignored:
                raise ValueError(f"{ignored} apply to the 'data' layout (one table with a "
                                 f"domain column) and would be ignored beside 'sources' and "
                                 f"'target'; remove them")
        else:
            raise ValueError("the task file must give the data: either 'data' with "
                             "'domain_column' and 'target_domains', or 'sources' and "
                             "'target'")
        if self.text_column is not None and self.image_column is not None:
            raise ValueError("set one of 'text_column' and 'image_column', not both")
        return self

    def options(self) -> dict:
        """The autopilot options given, checked by :class:`AutopilotSettings`."""
        given = {k: getattr(self, k) for k in TASK_OPTION_KEYS if k in self.model_fields_set}
        validated(AutopilotSettings, given)
        return given


class ShiftSettings(_Strict):
    """Options of ``transferkit shift``."""

    permutations: Annotated[StrictInt, Field(ge=1, le=1_000_000),
                            _allowed("a whole number from 1 to 1000000")] = 1000
    max_rows: Annotated[StrictInt, Field(ge=10), _allowed("a whole number of at least 10")] \
        = 5000
    top: Annotated[StrictInt, Field(ge=1), _allowed("a whole number of at least 1")] = 15
    seed: Seed = 0


def _check_device(value):
    import re

    if value is None or (isinstance(value, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?",
                                                                  value)):
        return value
    raise ValueError("'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")


def _check_folder(value):
    from pathlib import Path

    if value is None or isinstance(value, Path) or (isinstance(value, str) and value.strip()):
        return value
    raise ValueError("a folder path (text or pathlib.Path), or null for no checkpoints")


class TrainSettings(_Strict):
    """The options of :class:`~transferkit.deep.Trainer` (see its docstring)."""

    epochs: Annotated[StrictInt, Field(ge=1, le=1_000_000),
                      _allowed("a whole number of epochs of at least 1")] = 10
    batch_size: Annotated[StrictInt, Field(ge=1, le=1_000_000),
                          _allowed("a whole number of rows of at least 1")] = 32
    learning_rate: Annotated[Number, Field(gt=0, le=10),
                             _allowed("a positive number (e.g. 1e-3)")] = 1e-3
    weight_decay: Annotated[Number, Field(ge=0, le=10),
                            _allowed("a number of at least 0")] = 0.01
    warmup: Annotated[Number, Field(ge=0),
                      _allowed("a share of the steps below 1, or a number of steps")] = 0.1
    grad_clip: Annotated[Number | None, Field(gt=0),
                         _allowed("a positive gradient norm, or null for no clipping")] = 1.0
    patience: Annotated[StrictInt | None, Field(ge=1),
                        _allowed("a whole number of epochs of at least 1, or null")] = None
    time_budget: Annotated[Any, BeforeValidator(_check_duration),
                           _allowed("a positive number of seconds, a duration such as "
                                    "'90s' or '10m', or null for no limit")] = None
    random_state: Seed = 0
    device: Annotated[Any, BeforeValidator(_check_device),
                      _allowed("'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")] = "auto"
    mixed_precision: Annotated[StrictBool | Literal["auto"],
                               _allowed("'auto', true or false")] = "auto"
    checkpoint_dir: Annotated[Any, BeforeValidator(_check_folder),
                              _allowed("a folder path, or null for no checkpoints")] = None
    checkpoint_every: Annotated[StrictInt | None, Field(ge=1),
                                _allowed("a whole number of steps of at least 1, or null")] = None
    resume: Annotated[StrictBool, _allowed("true or false")] = False
    progress: Annotated[StrictBool, _allowed("true or false")] = False
    distributed: Annotated[StrictBool, _allowed("true or false")] = False

    @model_validator(mode="after")
    def _resume_needs_folder(self):
        if self.resume and self.checkpoint_dir is None:
            raise ValueError("resume=True needs a checkpoint_dir to resume from")
        if self.checkpoint_every is not None and self.checkpoint_dir is None:
            raise ValueError("checkpoint_every needs a checkpoint_dir to write to")
        if self.distributed and str(self.device).startswith("cuda:"):
            raise ValueError(f"distributed=True places each process on the GPU of its "
                             f"LOCAL_RANK; use device='cuda' or 'auto', not {self.device!r}")
        return self


def _describe(model: type[BaseModel], error: dict) -> str:
    loc = [str(p) for p in error["loc"]]
    field = loc[0] if loc else ""
    info = model.model_fields.get(field)
    extra = (info.json_schema_extra or {}) if info is not None else {}
    allowed = extra.get("allowed") if isinstance(extra, dict) else None
    for meta in (info.metadata if info is not None else ()):
        extra_meta = getattr(meta, "json_schema_extra", None)
        if isinstance(extra_meta, dict) and "allowed" in extra_meta:
            allowed = extra_meta["allowed"]
    if error["type"] == "extra_forbidden":
        return (f"unknown setting {field!r}; valid settings: "
                f"{sorted(model.model_fields)}")
    if not field:       # a rule across settings (a model validator)
        return str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    reason = str(error["msg"]).removeprefix("Value error, ")
    what = reason if error["type"] == "value_error" else (allowed or reason)
    return f"{field}: got {value!r} ({type(value).__name__}); expected: {what}"


def validated(model: type[BaseModel], values: dict, where: str = "") -> BaseModel:
    """``model`` built from ``values``, or one clear
    :class:`~transferkit.validation.TransferKitInputError` naming every bad
    setting, its value and what is allowed (``where``: e.g. the task file)."""
    if not isinstance(values, dict):
        raise TransferKitInputError(f"Settings{' in ' + where if where else ''} must be a "
                                    f"mapping of names to values, got {type(values).__name__}.")
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems, seen = [], set()
        for error in exc.errors(include_url=False):
            field = str(error["loc"][0]) if error["loc"] else ""
            if field and field in seen:     # one message per setting (not per union member)
                continue
            seen.add(field)
            problems.append(_describe(model, error))
        head = "Invalid setting" + ("s" if len(problems) > 1 else "")
        raise TransferKitInputError(
            f"{head}{' in ' + where if where else ''}: " + "; ".join(problems) + ".") from None
