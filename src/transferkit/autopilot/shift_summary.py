"""Shift summary for a task: how different are the source domains from the target?

All measures run on the features after one
:class:`~transferkit.preprocessing.TabularPreprocessor` fitted on every row
(so categorical columns count too).  To bound the cost on large tables, each
side is subsampled to at most ``max_rows`` rows (seeded) before the MMD test
and the domain classifier; the per-feature table uses every row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from transferkit.domains import DomainInfo
from transferkit.preprocessing import TabularPreprocessor
from transferkit.shift import coral_distance, feature_shift_table, mmd_test, proxy_a_distance

__all__ = ["summarise_shift"]


def _subsample(rows: np.ndarray, max_rows: int, rng) -> np.ndarray:
    if rows.size <= max_rows:
        return rows
    return np.sort(rng.choice(rows, size=max_rows, replace=False))


def summarise_shift(X, info: DomainInfo, n_permutations: int = 500, max_rows: int = 2000,
                    random_state=0) -> tuple[dict, pd.DataFrame | None]:
    """Measure source-vs-target shift.

    Returns
    -------
    summary : dict
        ``mmd2``, ``mmd_p_value``, ``mmd_bandwidth`` (Gaussian kernel, median
        heuristic, permutation test), ``proxy_a_distance``,
        ``coral_distance``, ``shift_detected`` (MMD p < 0.05), and
        ``per_source`` (the same MMD figures per source domain, closest
        first) when there are several source domains.
    feature_shift : DataFrame or None
        Per-feature two-sample statistics (DataFrame input only).
    """
    rng = check_random_state(random_state)
    Z = TabularPreprocessor().fit_transform(X)
    source_rows = np.flatnonzero(info.is_source)
    target_rows = np.flatnonzero(info.is_target)
    s = _subsample(source_rows, max_rows, rng)
    t = _subsample(target_rows, max_rows, rng)
    test = mmd_test(Z[s], Z[t], n_permutations=n_permutations, random_state=random_state)
    summary = {
        "n_source_rows_used": int(s.size),
        "n_target_rows_used": int(t.size),
        "mmd2": float(test.statistic),
        "mmd_p_value": float(test.p_value),
        "mmd_bandwidth": float(test.bandwidth),
        "mmd_permutations": int(n_permutations),
        "shift_detected": bool(test.p_value < 0.05),
        "proxy_a_distance": float(proxy_a_distance(Z[s], Z[t], random_state=random_state)),
        "coral_distance": float(coral_distance(Z[source_rows], Z[target_rows])),
    }
    domains = info.source_domains
    if len(domains) > 1:
        per_source = []
        for name in domains:
            rows = _subsample(np.flatnonzero((info.domains == name) & info.is_source),
                              max_rows, rng)
            if rows.size < 2:
                continue
            result = mmd_test(Z[rows], Z[t], n_permutations=min(n_permutations, 200),
                              bandwidth=test.bandwidth, random_state=random_state)
            per_source.append({"domain": str(name), "n_rows": int(rows.size),
                               "mmd2": float(result.statistic),
                               "mmd_p_value": float(result.p_value)})
        summary["per_source"] = sorted(per_source, key=lambda r: r["mmd2"])
    feature_shift = None
    if isinstance(X, pd.DataFrame):
        feature_shift = feature_shift_table(X.iloc[source_rows], X.iloc[target_rows])
    return summary, feature_shift
