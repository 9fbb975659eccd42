"""Per-feature shift between a source and a target table.

:func:`feature_shift_table` runs one univariate two-sample test per column
and ranks the columns by a shift size that is comparable across column
kinds:

* numeric columns: two-sample Kolmogorov-Smirnov test; the effect is the KS
  statistic :math:`D = \\sup_x |F_S(x) - F_T(x)|`;
* categorical columns (object, string, category or bool dtype): Pearson's
  chi-squared test of homogeneity on the :math:`2 \\times L` table of level
  counts (no continuity correction); the effect is the total-variation
  distance :math:`\\mathrm{TV} = \\tfrac12 \\sum_\\ell |p_S(\\ell) - p_T(\\ell)|`.

Both effects lie in [0, 1] and both are the largest difference in
probability that the two domains give to one event (a half-line for KS, a
set of levels for TV), so they can be ranked together.  Missing values are
left out of the tests and reported as the missing fraction of each domain.

Example
-------
>>> import pandas as pd
>>> from transferkit.shift import feature_shift_table
>>> src = pd.DataFrame({"age": [20, 30, 40, 50], "city": ["a", "a", "b", "b"]})
>>> tgt = pd.DataFrame({"age": [21, 29, 41, 52], "city": ["b", "b", "b", "b"]})
>>> feature_shift_table(src, tgt)["feature"].tolist()
['city', 'age']
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from transferkit.preprocessing import split_column_types
from transferkit.validation import TransferKitInputError, check_not_empty, check_same_columns

__all__ = ["feature_shift_table"]

_COLUMNS = [
    "feature", "kind", "test", "statistic", "p_value", "effect",
    "missing_source", "missing_target", "n_source", "n_target", "note",
]


def _numeric_row(source: pd.Series, target: pd.Series) -> dict:
    a = pd.to_numeric(source, errors="coerce").to_numpy(dtype=float)
    b = pd.to_numeric(target, errors="coerce").to_numpy(dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    row = {"kind": "numeric", "test": "ks", "n_source": a.size, "n_target": b.size}
    if a.size == 0 or b.size == 0:
        return {**row, **_no_test(a.size, b.size)}
    result = stats.ks_2samp(a, b)
    return {**row, "statistic": float(result.statistic), "p_value": float(result.pvalue),
            "effect": float(result.statistic), "note": ""}


def _categorical_row(source: pd.Series, target: pd.Series) -> dict:
    counts_s = source.dropna().astype(object).value_counts()
    counts_t = target.dropna().astype(object).value_counts()
    table = pd.concat([counts_s, counts_t], axis=1).fillna(0).to_numpy(dtype=float).T
    table = table[:, table.sum(axis=0) > 0]
    n_s, n_t = int(table[0].sum()), int(table[1].sum())
    row = {"kind": "categorical", "test": "chi2", "n_source": n_s, "n_target": n_t}
    if n_s == 0 or n_t == 0:
        return {**row, **_no_test(n_s, n_t)}
    effect = 0.5 * float(np.abs(table[0] / n_s - table[1] / n_t).sum())
    if table.shape[1] < 2:
        # one level in both domains: identical distributions
        return {**row, "statistic": 0.0, "p_value": 1.0, "effect": 0.0,
                "note": "single level in both domains"}
    statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    return {**row, "statistic": float(statistic), "p_value": float(p_value),
            "effect": effect, "note": ""}


def _no_test(n_s: int, n_t: int) -> dict:
    sides = [name for name, count in (("source", n_s), ("target", n_t)) if count == 0]
    return {"statistic": np.nan, "p_value": np.nan, "effect": np.nan,
            "note": f"all values missing in {' and '.join(sides)}; no test"}


def feature_shift_table(source_df: pd.DataFrame, target_df: pd.DataFrame) -> pd.DataFrame:
    """One two-sample test per column, ranked by shift size.

    Parameters
    ----------
    source_df : pandas.DataFrame
        Source rows.
    target_df : pandas.DataFrame
        Target rows with the same columns (any order).  A column is
        categorical when its dtype is object, string, category or bool in
        the two tables stacked; otherwise it is numeric.

    Returns
    -------
    pandas.DataFrame
        One row per column, sorted by ``effect`` (descending; columns that
        could not be tested last), then by ``p_value``, with columns

        ``feature``
            column name;
        ``kind``
            ``"numeric"`` or ``"categorical"``;
        ``test``
            ``"ks"`` (two-sample Kolmogorov-Smirnov,
            :func:`scipy.stats.ks_2samp`) or ``"chi2"`` (chi-squared test of
            homogeneity, :func:`scipy.stats.chi2_contingency`, no continuity
            correction);
        ``statistic``, ``p_value``
            of that test (NaN when a domain has no observed value);
        ``effect``
            KS statistic :math:`\\sup_x|F_S(x) - F_T(x)|` for numeric columns,
            total-variation distance :math:`\\tfrac12\\sum_\\ell|p_S(\\ell) -
            p_T(\\ell)|` for categorical ones; both in [0, 1];
        ``missing_source``, ``missing_target``
            fraction of missing values in each domain;
        ``n_source``, ``n_target``
            number of non-missing values tested;
        ``note``
            why a column was not tested, if it was not.

    Notes
    -----
    The p-values are per column, not corrected for testing many columns;
    apply e.g. a Holm or Benjamini-Hochberg correction before calling a
    single column significant.  With large samples tiny shifts are
    significant, so rank by ``effect`` rather than by ``p_value``.

    References
    ----------
    Rabanser, Günnemann, Lipton. "Failing Loudly: An Empirical Study of
    Methods for Detecting Dataset Shift." NeurIPS 2019 (univariate tests
    per feature as a shift detector).

    Example
    -------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> src = pd.DataFrame({"x": rng.normal(size=300), "z": rng.normal(size=300)})
    >>> tgt = pd.DataFrame({"x": rng.normal(size=300), "z": rng.normal(2, size=300)})
    >>> feature_shift_table(src, tgt).iloc[0]["feature"]
    'z'
    """
    for name, frame in (("source_df", source_df), ("target_df", target_df)):
        if not isinstance(frame, pd.DataFrame):
            raise TransferKitInputError(
                f"{name} must be a pandas DataFrame, got {type(frame).__name__}; wrap an "
                "array with pandas.DataFrame(X, columns=...)."
            )
    check_not_empty(source_df.shape[0], "The source table")
    check_not_empty(target_df.shape[0], "The target table")
    if source_df.shape[1] == 0:
        raise TransferKitInputError("The tables have no columns; nothing to compare.")
    duplicated = source_df.columns[source_df.columns.duplicated()].tolist()
    if duplicated:
        raise TransferKitInputError(
            f"The source table has duplicated column names {duplicated[:10]}; rename them."
        )
    columns = check_same_columns({"source": source_df, "target": target_df})
    target_df = target_df[columns]
    stacked = pd.concat([source_df, target_df], axis=0, ignore_index=True)
    numeric, _ = split_column_types(stacked)
    numeric = set(numeric)

    rows = []
    for column in columns:
        source, target = source_df[column], target_df[column]
        if column in numeric:
            row = _numeric_row(source, target)
        else:
            row = _categorical_row(source, target)
        row.update(
            feature=column,
            missing_source=float(source.isna().mean()),
            missing_target=float(target.isna().mean()),
        )
        rows.append(row)
    table = pd.DataFrame(rows, columns=_COLUMNS)
    table = table.sort_values(
        ["effect", "p_value"], ascending=[False, True], na_position="last", kind="mergesort"
    )
    return table.reset_index(drop=True)
