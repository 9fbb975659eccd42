"""The ``transferkit`` command line.

Commands
--------
``transferkit demo``
    The autopilot on built-in real data (Lending Club loans by state).
``transferkit run TASK_FILE``
    The autopilot on a task described in a YAML/TOML file
    (see :mod:`transferkit.taskfile`).
``transferkit shift A B``
    Shift report between two tables.
``transferkit predict MODEL_DIR DATA``
    Apply a saved model to new rows.
``transferkit extract INPUT --output FEATURES``
    Backbone features of an image folder or a text/image column.

Exit codes: 0 success; 2 bad input or usage (the message says what to fix);
1 an unexpected internal error (with a traceback); 130 interrupted.
``--json`` prints one JSON document on standard output and nothing else;
progress bars go to standard error.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from transferkit.output import check_destination
from transferkit.validation import TransferKitInputError

__all__ = ["main"]


# --------------------------------------------------------------------- output
def _text_table(header, rows) -> str:
    cells = [[str(h) for h in header]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _print_result(result: dict, out) -> None:
    from transferkit.report import (
        chosen_rows,
        estimate_lines,
        leaderboard_rows,
        report_metrics,
        timing_lines,
    )

    shift = result["shift"]
    print("\nShift between source and target", file=out)
    print(f"  MMD^2 = {shift['mmd2']:.5f} (Gaussian kernel, median bandwidth), permutation "
          f"p = {shift['mmd_p_value']:.4f} over {shift['mmd_permutations']} permutations -> "
          f"{'shift detected' if shift['shift_detected'] else 'no shift detected'}", file=out)
    print(f"  proxy A-distance = {shift['proxy_a_distance']:.3f} (0 same, 2 separable); "
          f"CORAL distance = {shift['coral_distance']:.5f}", file=out)
    if shift.get("per_source"):
        closest = ", ".join(f"{r['domain']} ({r['mmd2']:.4f})" for r in shift["per_source"])
        print(f"  source domains, closest first (MMD^2): {closest}", file=out)
    if result.get("feature_shift"):
        top = result["feature_shift"][:5]
        print("  most shifted features: " + ", ".join(
            f"{r['feature']} ({r['test']} effect {r['effect']:.3f})" for r in top), file=out)
    metrics = report_metrics(result)[:5]
    print(f"\nLeaderboard ({result['evidence']}; mean [95% interval])", file=out)
    print(_text_table(["#", "strategy", "family"] + metrics + ["verdict", "p"],
                      leaderboard_rows(result, metrics)), file=out)
    chosen = chosen_rows(result)
    if chosen:
        print("\nChosen on the labelled target rows of each training fold (value (folds)):",
              file=out)
        for strategy, text in chosen:
            print(f"  {strategy}: {text}", file=out)
    estimate = estimate_lines(result)
    if estimate:
        print("\nWhat you get (naive figures are best-of-many and optimistic):", file=out)
        for line in estimate:
            print(f"  {line}", file=out)
    timing = timing_lines(result)
    if timing:
        print("\nWhere the time went:", file=out)
        for line in timing:
            print(f"  {line}", file=out)
    print(f"\nVerdict: {result['verdict']}", file=out)
    for note in result.get("notes", []):
        print(f"Note: {note}", file=out)


# -------------------------------------------------------------------- outputs
def _save_outputs(folder: Path, result, X, payload: dict, title: str, description: str,
                  label: str | None, overwrite=False, inputs=(), settings=None,
                  extra_sections=None, model=None, modality="tabular") -> dict:
    """The run's model, results and report, written through the one output writer
    (:class:`~transferkit.output.OutputFolder`: staged, manifested, swapped in)."""
    from transferkit.io import write_atomic, write_json
    from transferkit.output import OutputFolder
    from transferkit.persistence import save_model
    from transferkit.report import render_report

    paths = {"results": str(folder / "results.json"), "report": str(folder / "report.html"),
             "model": str(folder / "model")}
    payload = payload | {"outputs": paths}
    with OutputFolder(folder, overwrite=overwrite, inputs=inputs,
                      settings=settings or {}) as stage:
        save_model(stage / "model", model if model is not None else result.model,
                   feature_frame=X, n_features=X.shape[1], task=result.task.task,
                   modality=modality, classes=result.task.classes,
                   positive_label=result.positive_label, label=label,
                   strategy=result.recommended)
        write_json(stage / "results.json", payload)
        write_atomic(stage / "report.html",
                     render_report(payload, title=title, description=description,
                                   extra_sections=extra_sections))
    return payload


def _autopilot(options: dict, args):
    """The autopilot of this command, its settings checked before any work."""
    from transferkit.autopilot import Autopilot
    from transferkit.autopilot.budget import DEFAULT_STRATEGY_TIME_BUDGET, DEFAULT_TIME_BUDGET
    from transferkit.autopilot.source_subsample import DEFAULT_MAX_SOURCE_ROWS

    autopilot = Autopilot(
        strategies=options.get("strategies"),
        metric=options.get("metric"),
        task=options.get("task", "auto"),
        positive_label=options.get("positive_label"),
        n_splits=options.get("n_splits", 5),
        n_repeats=options.get("n_repeats", 3),
        alpha=options.get("alpha", 0.05),
        require_significance=options.get("require_significance", False),
        n_jobs=args.n_jobs,
        random_state=options.get("random_state", 0),
        progress=not (args.quiet or args.json),
        modality=options.get("modality", "tabular"),
        time_budget=(args.time_budget if args.time_budget is not None
                     else options.get("time_budget", DEFAULT_TIME_BUDGET)),
        racing=options.get("racing", False),
        max_source_rows=options.get("max_source_rows", DEFAULT_MAX_SOURCE_ROWS),
        backbone=options.get("backbone"),
        strategy_time_budget=options.get("strategy_time_budget",
                                         DEFAULT_STRATEGY_TIME_BUDGET),
    )
    autopilot.check_settings()
    return autopilot


def _json_safe(options: dict) -> dict:
    return json.loads(json.dumps(options, default=str))


def _holdout_check(task, result) -> tuple[dict, str]:
    """Score the recommended model and target-only on the untouched target hold-out."""
    from transferkit.autopilot import get_strategy
    from transferkit.evaluation import classification_metrics
    from transferkit.preprocessing import TabularPreprocessor
    from sklearn.pipeline import Pipeline

    models = {result.recommended: result.model}
    if result.recommended != "target_only":
        baseline = Pipeline([("preprocess", TabularPreprocessor()),
                             ("strategy", get_strategy("target_only").build(result.task, 0))])
        models["target_only"] = baseline.fit(task.X, task.y)
    scores = {}
    for name, model in models.items():
        proba = model.predict_proba(task.X_holdout)
        classes = list(model.classes_)
        scores[name] = classification_metrics(
            task.y_holdout, model.predict(task.X_holdout),
            y_score=proba[:, classes.index(task.positive_label)],
            positive_label=task.positive_label)
    keys = ["balanced_accuracy", "recall_pos", "f1_pos", "roc_auc", "accuracy"]
    rows = [[name] + [f"{s[k]:.3f}" for k in keys] for name, s in scores.items()]
    text = _text_table(["model"] + keys, rows)
    return {"n_rows": int(len(task.y_holdout)), "scores": scores}, text


# ------------------------------------------------------------------- commands
def _cmd_demo(args) -> int:
    from transferkit.datasets import lending_club_task
    from transferkit.report import html_table

    out = sys.stderr if args.json else sys.stdout
    options = {"random_state": args.seed, "metric": args.metric, "n_repeats": args.n_repeats}
    _autopilot(options, args)                       # every setting checked before any work
    check_destination(Path(args.output), args.overwrite)
    task = lending_club_task(n_labelled=args.n_labelled, random_state=args.seed)
    print("transferkit demo: credit risk transfer across US states\n" + task.description,
          file=out)
    options["positive_label"] = task.positive_label
    autopilot = _autopilot(options, args)
    result = autopilot.run(task.X, task.y)
    payload = result.to_dict() | {"description": task.description}
    _print_result(payload, out)
    holdout, text = _holdout_check(task, result)
    payload["holdout"] = holdout
    n_positive = int((task.y_holdout == task.positive_label).sum())
    print(f"\nHold-out check on {holdout['n_rows']} target loans never used above "
          f"({n_positive} of them '{task.positive_label}', so differences of a few points "
          f"are within noise):\n{text}", file=out)
    keys = ["balanced_accuracy", "recall_pos", "f1_pos", "roc_auc"]
    section = html_table(["model"] + keys, [[n] + [f"{s[k]:.3f}" for k in keys]
                                        for n, s in holdout["scores"].items()])
    payload = _save_outputs(Path(args.output), result, task.X, payload, "transferkit demo",
                            task.description, label="Class", overwrite=args.overwrite,
                            settings=_json_safe(options | {"command": "demo"}),
                            extra_sections={"Hold-out check (target rows never used)": section})
    _finish(payload, args, out)
    return 0


def _cmd_run(args) -> int:
    from sklearn.pipeline import Pipeline

    from transferkit.featurize import ColumnFeatureExtractor, RawInputModel
    from transferkit.taskfile import load_task

    out = sys.stderr if args.json else sys.stdout
    spec = load_task(args.task_file)
    folder = Path(args.output) if args.output else (
        spec.path.parent / spec.options.get("output", "transferkit-output"))
    autopilot = _autopilot(spec.options | {"modality": spec.modality,
                                           "backbone": spec.backbone}, args)
    check_destination(folder, args.overwrite)
    print(f"transferkit run: {spec.path} ({len(spec.X)} rows, {spec.modality})", file=out)
    X, extractor, raw = spec.X, None, None
    if spec.modality != "tabular":
        extractor = ColumnFeatureExtractor(
            spec.column, spec.modality, backbone=spec.backbone, cache_dir=spec.cache_dir,
            progress=not (args.quiet or args.json)).fit()
        X, raw = extractor.transform(spec.X), extractor.raw_inputs(spec.X)
        print(f"Extracted {X.shape[1]}-d {spec.modality} features with "
              f"{extractor.extractor_.backbone}", file=out)
    result = autopilot.run(X, spec.y, raw=raw)
    payload = result.to_dict() | {"task_file": str(spec.path)}
    _print_result(payload, out)
    model = result.model
    if extractor is not None:
        model = (RawInputModel(extractor, model) if getattr(model, "needs_raw", False)
                 else Pipeline([("extract", extractor), ("model", model)]))
    payload = _save_outputs(folder, result, spec.X, payload,
                            spec.options.get("name", f"transferkit: {spec.path.name}"),
                            "", label=spec.label, overwrite=args.overwrite,
                            inputs=[spec.path, *spec.inputs],
                            settings=_json_safe(spec.options | {"command": "run"}), model=model,
                            modality=spec.modality)
    _finish(payload, args, out)
    return 0


def _finish(payload: dict, args, out) -> None:
    if args.json:
        json.dump(payload, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        o = payload["outputs"]
        print(f"\nWrote {o['results']}, {o['report']} and the model in {o['model']}", file=out)


def _cmd_shift(args) -> int:
    from transferkit.io import read_table
    from transferkit.preprocessing import TabularPreprocessor
    from transferkit.settings import ShiftSettings, validated
    from transferkit.shift import coral_distance, feature_shift_table, mmd_test, proxy_a_distance
    from transferkit.validation import check_same_columns

    validated(ShiftSettings, {"permutations": args.permutations, "max_rows": args.max_rows,
                              "top": args.top, "seed": args.seed}, where="transferkit shift")
    a, b = read_table(args.a), read_table(args.b)
    for column in args.ignore:
        for name, table in (("A", a), ("B", b)):
            if column not in table.columns:
                raise TransferKitInputError(f"--ignore column {column!r} is not in table {name}.")
    a, b = a.drop(columns=args.ignore), b.drop(columns=args.ignore)
    columns = check_same_columns({"A": a, "B": b})
    b = b[columns]
    pre = TabularPreprocessor().fit(pd.concat([a, b], ignore_index=True))
    rng = np.random.default_rng(args.seed)
    Za, Zb = pre.transform(a), pre.transform(b)
    sa = Za[rng.choice(len(Za), min(len(Za), args.max_rows), replace=False)]
    sb = Zb[rng.choice(len(Zb), min(len(Zb), args.max_rows), replace=False)]
    test = mmd_test(sa, sb, n_permutations=args.permutations, random_state=args.seed)
    table = feature_shift_table(a, b)
    payload = {
        "a": str(args.a), "b": str(args.b), "n_a": len(a), "n_b": len(b),
        "mmd2": float(test.statistic), "mmd_p_value": float(test.p_value),
        "mmd_permutations": args.permutations, "mmd_bandwidth": float(test.bandwidth),
        "shift_detected": bool(test.p_value < 0.05),
        "proxy_a_distance": float(proxy_a_distance(sa, sb, random_state=args.seed)),
        "coral_distance": float(coral_distance(Za, Zb)),
        "feature_shift": json.loads(table.to_json(orient="records")),
    }
    if args.json:
        json.dump(payload, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        return 0
    print(f"Shift from {args.a} ({len(a)} rows) to {args.b} ({len(b)} rows)")
    print(f"  MMD^2 = {payload['mmd2']:.5f}, permutation p = {payload['mmd_p_value']:.4f} "
          f"({args.permutations} permutations) -> "
          f"{'shift detected' if payload['shift_detected'] else 'no shift detected'}")
    print(f"  proxy A-distance = {payload['proxy_a_distance']:.3f}; CORAL distance = "
          f"{payload['coral_distance']:.5f}\n")
    shown = table.head(args.top)
    print(_text_table(list(shown.columns), [
        [f"{v:.4g}" if isinstance(v, float) else v for v in row]
        for row in shown.itertuples(index=False)]))
    return 0


def _cmd_predict(args) -> int:
    from transferkit.io import read_table, write_table
    from transferkit.persistence import load_model

    model = load_model(args.model_dir)
    data_path = Path(args.data)
    output = Path(args.output) if args.output else data_path.with_name(
        f"{data_path.stem}.predictions.csv")
    _check_output_file(output, [data_path, *model.inputs], args.overwrite)
    data = read_table(args.data)
    if model.metadata.get("modality") == "image":
        # Relative image paths in the data file are relative to that file.
        model.pipeline.set_params(extract__base_dir=str(Path(args.data).resolve().parent))
    label = model.metadata.get("label")
    ignore = [label] if label else []
    predictions = pd.DataFrame({"prediction": model.predict(data, ignore=ignore)})
    if hasattr(model.pipeline, "predict_proba") and model.metadata.get("task") == "classification":
        proba = model.predict_proba(data, ignore=ignore)
        for k, cls in enumerate(model.pipeline.classes_):
            predictions[f"proba_{cls}"] = proba[:, k]
    write_table(output, predictions, protect=[data_path, *model.inputs])
    if args.json:
        json.dump({"output": str(output), "n_rows": len(predictions),
                   "model": str(args.model_dir)}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"Wrote {len(predictions)} predictions to {output}")
    return 0


_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


def _check_output_file(output: Path, inputs, overwrite: bool,
                       suffixes=_TABLE_SUFFIXES) -> None:
    """Before any work: never over the data or a file the model was trained from; a
    supported file type; no existing file replaced without ``--overwrite``."""
    if output.is_dir():
        raise TransferKitInputError(f"--output {output} is a folder; name a file "
                                    f"({', '.join(suffixes)}).")
    for path in inputs:
        path = Path(path)
        if output.exists() and path.exists() and output.samefile(path):
            raise TransferKitInputError(
                f"Refusing to write over {output}: it is the data to read or a file the "
                f"model was trained from. Choose another --output.")
    if output.suffix.lower() not in suffixes:
        raise TransferKitInputError(
            f"Unsupported output type {output.suffix!r} for {output}; use "
            f"{', '.join(suffixes)}.")
    if output.exists() and not overwrite:
        raise TransferKitInputError(
            f"{output} already exists; pass --overwrite to replace it, or choose another "
            f"--output.")


def _cmd_extract(args) -> int:
    from transferkit.backbones import FeatureExtractor
    from transferkit.io import read_table, write_atomic, write_table

    source = Path(args.input)
    if args.batch_size < 1:
        raise TransferKitInputError(
            f"batch_size: got {args.batch_size}; expected a whole number of at least 1.")
    _check_output_file(Path(args.output), [source], args.overwrite,
                       suffixes=(".npy", *_TABLE_SUFFIXES))
    labels, names = None, None
    if source.is_dir():
        from transferkit.datasets.image_folder import load_image_folder

        has_classes = any(p.is_dir() for p in source.iterdir())
        if has_classes:
            listing = load_image_folder(source)
            inputs = [str(p) for p in listing.paths]
            labels = np.asarray(listing.class_names, dtype=object)[listing.labels]
        else:
            inputs = str(source)
        backbone = args.backbone or "mobilenet_v2"
    else:
        table = read_table(source)
        column = args.text_column or args.image_column
        if column is None:
            raise TransferKitInputError(
                f"{source} is a table: say which column to extract with --text-column or "
                "--image-column."
            )
        from transferkit.featurize import DEFAULT_BACKBONES, ColumnFeatureExtractor

        modality = "text" if args.text_column else "image"
        extractor = ColumnFeatureExtractor(column, modality, backbone=args.backbone,
                                           base_dir=str(source.resolve().parent),
                                           batch_size=args.batch_size,
                                           cache_dir=args.cache_dir, progress=not args.json)
        features = extractor.fit_transform(table)
        backbone = args.backbone or DEFAULT_BACKBONES[modality]
        inputs = None
    if inputs is not None:
        fx = FeatureExtractor(backbone=backbone, batch_size=args.batch_size,
                              cache_dir=args.cache_dir, progress=not args.json)
        features = fx.fit_transform(inputs)
        if isinstance(inputs, list):
            names = inputs
    output = Path(args.output)
    if output.suffix.lower() == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, features.astype(np.float32))
        write_atomic(output, buffer.getvalue(), protect=[source])
    else:
        frame = pd.DataFrame(features, columns=[f"f{i}" for i in range(features.shape[1])])
        if names is not None:
            frame.insert(0, "path", names)
        if labels is not None:
            frame.insert(1, "label", labels)
        write_table(output, frame, protect=[source])
    summary = {"output": str(output), "n_rows": int(features.shape[0]),
               "n_features": int(features.shape[1]), "backbone": backbone}
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"Wrote {features.shape[0]} x {features.shape[1]} {backbone} features to {output}")
    return 0


# --------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transferkit",
        description="Transfer learning for small labelled data: measure the shift, try the "
                    "sensible strategies, evaluate honestly against target-only.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, outputs=True, n_jobs=-1):
        p.add_argument("--json", action="store_true", help="print one JSON document only")
        if outputs:
            p.add_argument("--quiet", action="store_true", help="no progress bars")
            p.add_argument("--n-jobs", type=int, default=n_jobs,
                           help=f"parallel (strategy, fold) jobs (joblib; -1 = all cores; "
                                f"default {n_jobs})")
            p.add_argument("--time-budget", default=None,
                           help="what the run may take: seconds or a duration such as 90s, "
                                "10m, 1h30m (default 10m); when it runs out, or on Ctrl-C, "
                                "the choice is made among the strategies done so far")

    demo = sub.add_parser("demo", help="run the autopilot on built-in real credit data")
    demo.add_argument("--output", default="transferkit-output/demo", help="output folder")
    demo.add_argument("--n-labelled", type=int, default=250, help="labelled target loans")
    demo.add_argument("--metric", default="balanced_accuracy", help="primary metric")
    demo.add_argument("--n-repeats", type=int, default=2,
                      help="repeats of the 5-fold target cross-validation")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--overwrite", action="store_true",
                      help="replace the output of a previous run in --output")
    common(demo, n_jobs=-1)
    demo.set_defaults(func=_cmd_demo)

    run = sub.add_parser("run", help="run the autopilot on a YAML/TOML task file")
    run.add_argument("task_file")
    run.add_argument("--output", help="output folder (default: the task's 'output' setting, "
                                      "else transferkit-output beside the task file)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the output of a previous run in the output folder")
    common(run)
    run.set_defaults(func=_cmd_run)

    shift = sub.add_parser("shift", help="shift report between two tables (CSV/Parquet)")
    shift.add_argument("a")
    shift.add_argument("b")
    shift.add_argument("--ignore", nargs="*", default=[], help="columns to leave out")
    shift.add_argument("--permutations", type=int, default=1000)
    shift.add_argument("--max-rows", type=int, default=5000,
                       help="rows per table used by the MMD test and domain classifier")
    shift.add_argument("--top", type=int, default=15, help="features shown")
    shift.add_argument("--seed", type=int, default=0)
    common(shift, outputs=False)
    shift.set_defaults(func=_cmd_shift)

    extract = sub.add_parser("extract", help="backbone features of images or texts to "
                                             "Parquet/NPY")
    extract.add_argument("input", help="image folder, or a CSV/Parquet table")
    extract.add_argument("--output", required=True, help="features file (.parquet or .npy)")
    extract.add_argument("--backbone", help="backbone name or hf:<path-or-id> (default: "
                                            "mobilenet_v2 for images, all-MiniLM-L6-v2 "
                                            "for text)")
    extract.add_argument("--text-column")
    extract.add_argument("--image-column")
    extract.add_argument("--batch-size", type=int, default=32)
    extract.add_argument("--cache-dir", help="on-disk feature cache folder")
    extract.add_argument("--overwrite", action="store_true",
                         help="replace an existing features file")
    common(extract, outputs=False)
    extract.set_defaults(func=_cmd_extract)

    predict = sub.add_parser("predict", help="apply a saved model to new rows")
    predict.add_argument("model_dir")
    predict.add_argument("data")
    predict.add_argument("--output", help="predictions file (.csv or .parquet; default "
                                          "DATA.predictions.csv beside the data)")
    predict.add_argument("--overwrite", action="store_true",
                         help="replace an existing predictions file")
    common(predict, outputs=False)
    predict.set_defaults(func=_cmd_predict)
    return parser


def _version() -> str:
    from transferkit import __version__

    return f"transferkit {__version__}"


def main(argv=None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TransferKitInputError as exc:
        print(f"transferkit: error: {exc}", file=sys.stderr)
        if getattr(args, "json", False):       # --json promises one JSON document
            json.dump({"error": str(exc), "exit_code": 2}, sys.stdout, indent=2)
            sys.stdout.write("\n")
        return 2
    except KeyboardInterrupt:
        print("transferkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
