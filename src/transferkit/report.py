"""A self-contained HTML report of an autopilot run (no external assets).

:func:`render_report` takes the JSON view of a result
(:meth:`transferkit.autopilot.AutopilotResult.to_dict`, plus optional extra
sections) and returns one HTML page: verdict, task, shift summary, the most
shifted features, the leaderboard with confidence intervals, and notes.
Every value is HTML-escaped.
"""

from __future__ import annotations

import html
import math

__all__ = ["render_report", "format_score", "html_table", "leaderboard_rows", "chosen_rows",
           "report_metrics"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1d2430;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #d8dde6;padding-bottom:.3rem}
table{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}
th,td{border:1px solid #d8dde6;padding:.3rem .6rem;text-align:right}
th{background:#f1f4f9}td.l,th.l{text-align:left}
.verdict{padding:1rem;border-radius:6px;font-size:1.05rem;margin:1rem 0}
.helps{background:#e6f6ea;border:1px solid #7cc48d}
.neutral{background:#fff8e1;border:1px solid #e6c65c}
.hurts{background:#fdecea;border:1px solid #e08c84}
.rec td{font-weight:600;background:#f4fbf6}.neg td{color:#a3261b}
.small{color:#5b6475;font-size:.85rem}
"""


def format_score(mean, low=None, high=None, digits=3) -> str:
    """``mean [low, high]`` with NaN shown as 'n/a'."""
    def fmt(v):
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"

    if low is None and high is None:
        return fmt(mean)
    return f"{fmt(mean)} [{fmt(low)}, {fmt(high)}]"


def html_table(header, rows, left=1, row_classes=None) -> str:
    esc = html.escape
    out = ["<table><tr>"]
    out += [f'<th class="{"l" if i < left else ""}">{esc(str(h))}</th>'
            for i, h in enumerate(header)]
    out.append("</tr>")
    for k, row in enumerate(rows):
        cls = f' class="{row_classes[k]}"' if row_classes and row_classes[k] else ""
        out.append(f"<tr{cls}>")
        out += [f'<td class="{"l" if i < left else ""}">{esc(str(v))}</td>'
                for i, v in enumerate(row)]
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _verdict_class(verdict: str) -> str:
    if verdict.startswith("Transfer helps"):
        return "helps"
    if verdict.startswith("Transfer does not help"):
        return "hurts"
    return "neutral"


def leaderboard_rows(result: dict, metrics) -> list[list[str]]:
    """Leaderboard rows as text: strategy, family, each metric's mean [CI], verdict."""
    rows = []
    for entry in result["leaderboard"]:
        p = entry.get("p_value")
        rows.append(
            [entry["rank"], entry["strategy"], entry["family"]]
            + [format_score(entry.get(f"{m}_mean"), entry.get(f"{m}_ci_low"),
                            entry.get(f"{m}_ci_high")) for m in metrics]
            + [entry["verdict"], "" if p is None else f"{p:.3g}"]
        )
    return rows


def chosen_rows(result: dict) -> list[list[str]]:
    """``[strategy, what it chose on the target over the folds]`` for each strategy that
    chose something (the leaderboard's ``chosen_on_target``)."""
    return [[e["strategy"], e["chosen_on_target"]] for e in result["leaderboard"]
            if e.get("chosen_on_target")]


def estimate_lines(result: dict) -> list[str]:
    """What ships and its honest estimate, as sentences (empty without target labels).

    The corrected figure is the bootstrap bias-corrected CV estimate of the
    whole procedure (choose among the strategies, then refit); the naive one
    is the chosen model's own out-of-fold score, optimistic by the winner's
    curse.
    """
    estimate = result.get("estimate")
    if not estimate:
        return []
    metric, baseline = result["metric"], result["baseline"]
    level = f"{estimate['confidence']:.0%}"
    members = result.get("members") or {}
    shipped = (result["recommended"] if len(members) <= 1 else "ensemble of " + ", ".join(
        f"{name} (weight {weight:g})" for name, weight in members.items()))
    sign = 1 if result["greater_is_better"] else -1
    optimism = sign * (estimate["naive"] - estimate["corrected"])
    return [
        f"Shipped: {shipped}.",
        f"Expected {metric} on new target rows (bootstrap bias-corrected CV of the whole "
        f"procedure, choice then guard, Tsamardinos et al. 2018): {estimate['corrected']:.3f} "
        f"[{estimate['corrected_ci_low']:.3f}, {estimate['corrected_ci_high']:.3f}] ({level}); "
        f"naive out-of-fold figure of the choice {estimate['naive']:.3f} (optimism "
        f"{optimism:+.3f}).",
        f"Gain over {baseline}: corrected {estimate['gain']:+.3f} "
        f"[{estimate['gain_ci_low']:+.3f}, {estimate['gain_ci_high']:+.3f}]; naive "
        f"{estimate['naive_gain']:+.3f}.",
    ]


def timing_lines(result: dict, top: int = 8) -> list[str]:
    """Where the run's time went: the stages, then the costliest strategies."""
    timings = result.get("timings") or {}
    if not timings:
        return []
    budget = timings.get("time_budget")
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in timings["stages"].items())
    lines = [f"{result['seconds']:.1f} s in all"
             + (f" (budget {budget:g} s)" if budget is not None else " (no budget)")
             + f": {stages}."]
    for row in timings["strategies"][:top]:
        per_fold = ("" if row["seconds_per_fold"] is None
                    else f", {row['seconds_per_fold']:.2f} s a fold")
        status = "" if row["status"] == "complete" else f"; {row['status']}"
        lines.append(f"{row['strategy']}: {row['seconds']:.1f} s over {row['folds']} folds"
                     f"{per_fold}{status}")
    rest = timings["strategies"][top:]
    if rest:
        lines.append(f"{len(rest)} more strategies: {sum(r['seconds'] for r in rest):.1f} s")
    return lines


def report_metrics(result: dict) -> list[str]:
    """Metrics present in the leaderboard, primary first."""
    first = result["leaderboard"][0]
    names = [k[: -len("_mean")] for k in first if k.endswith("_mean")]
    return [result["metric"]] + [m for m in names if m != result["metric"]]


def render_report(result: dict, title: str = "transferkit report", description: str = "",
                  extra_sections: dict | None = None) -> str:
    """Render a result dict (see module docstring) as a standalone HTML page."""
    esc = html.escape
    metrics = report_metrics(result)
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{esc(title)}</h1>"]
    if description:
        parts.append(f"<p>{esc(description)}</p>")
    parts.append(f"<div class='verdict {_verdict_class(result['verdict'])}'>"
                 f"{esc(result['verdict'])}</div>")
    estimate = estimate_lines(result)
    if estimate:
        parts.append("<h2>What you get</h2><ul>"
                     + "".join(f"<li>{esc(line)}</li>" for line in estimate) + "</ul>")
    parts.append(f"<p class='small'>Evidence: {esc(result['evidence'])}. Primary metric: "
                 f"{esc(result['metric'])}. Baseline: {esc(result['baseline'])}.</p>")

    task = result["task"]
    parts.append("<h2>Task</h2>")
    parts.append(html_table(["item", "value"], [
        ["task", task["task"]],
        ["modality", task.get("modality", "tabular")],
        ["source rows", task["n_source"]],
        ["source domains", task["n_source_domains"]],
        ["labelled target rows", task["n_labelled_target"]],
        ["unlabelled target rows", task["n_unlabelled_target"]],
        ["features", task["n_features"]],
        ["classes", ", ".join(task["classes"]) or "-"],
        ["positive class", result.get("positive_label") or "-"],
    ]))

    shift = result["shift"]
    parts.append("<h2>Shift between source and target</h2>")
    parts.append(html_table(["measure", "value"], [
        ["MMD² (Gaussian kernel, median bandwidth)", f"{shift['mmd2']:.5f}"],
        [f"MMD permutation test p-value ({shift['mmd_permutations']} permutations)",
         f"{shift['mmd_p_value']:.4f}"],
        ["shift detected (p < 0.05)", "yes" if shift["shift_detected"] else "no"],
        ["proxy A-distance (0 = indistinguishable, 2 = separable)",
         f"{shift['proxy_a_distance']:.3f}"],
        ["CORAL distance", f"{shift['coral_distance']:.5f}"],
    ]))
    if shift.get("per_source"):
        parts.append("<p>Source domains, closest to the target first:</p>")
        parts.append(html_table(["domain", "rows", "MMD²", "p-value"], [
            [r["domain"], r["n_rows"], f"{r['mmd2']:.5f}", f"{r['mmd_p_value']:.4f}"]
            for r in shift["per_source"]]))
    if result.get("feature_shift"):
        parts.append("<p>Most shifted features:</p>")
        top = result["feature_shift"][:10]
        parts.append(html_table(["feature", "kind", "test", "effect", "p-value"], [
            [r["feature"], r["kind"], r["test"], format_score(r["effect"]),
             "n/a" if r["p_value"] is None else f"{r['p_value']:.3g}"] for r in top]))

    parts.append("<h2>Leaderboard</h2>")
    parts.append("<p class='small'>Mean over folds with a 95% interval (Nadeau–Bengio "
                 "corrected variance); p-value of the paired comparison with the "
                 "baseline.</p>")
    rows = leaderboard_rows(result, metrics)
    classes = ["rec" if e["strategy"] == result["recommended"]
               else ("neg" if e["verdict"] == "negative transfer" else "")
               for e in result["leaderboard"]]
    parts.append(html_table(["#", "strategy", "family"] + metrics + ["verdict", "p"], rows,
                        left=3, row_classes=classes))
    chosen = chosen_rows(result)
    if chosen:
        parts.append("<p class='small'>Hyper-parameters chosen by cross-validation on the "
                     "labelled target rows of each training fold: value (folds).</p>")
        parts.append(html_table(["strategy", "chosen on the target"], chosen, left=2))
    for heading, body in (extra_sections or {}).items():
        parts.append(f"<h2>{esc(heading)}</h2>{body}")
    timing = timing_lines(result, top=len((result.get("timings") or {}).get("strategies", [])))
    if timing:
        parts.append("<h2>Where the time went</h2><ul>"
                     + "".join(f"<li>{esc(line)}</li>" for line in timing) + "</ul>")
    if result.get("notes"):
        parts.append("<h2>Notes</h2><ul>"
                     + "".join(f"<li>{esc(n)}</li>" for n in result["notes"]) + "</ul>")
    parts.append(f"<p class='small'>Run time {result['seconds']:.1f} s. Generated by "
                 "transferkit.</p></body></html>")
    return "".join(parts)
