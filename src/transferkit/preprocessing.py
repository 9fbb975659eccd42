"""One preprocessing step for mixed-type tables, fitted across all domains.

:class:`TabularPreprocessor` turns a DataFrame (or array) with numeric and
categorical columns and missing values into a float matrix:

* numeric column ``x``: median imputation, plus a 0/1 "was missing" column
  when ``x`` had missing values at fit time, then standardisation
  ``(x - mean) / std`` (``std`` taken as 1 for a constant column);
* categorical column (object, string, category or bool dtype): the most
  frequent level imputes missing values, then one-hot encoding; levels never
  seen at fit time encode as all zeros (or, when ``max_categories`` grouped
  rare levels into an "infrequent" column, as that column).

At ``transform`` time a numeric column must still hold numbers (text in it
is an error, not a silent missing value) and no infinite values.

It is fitted once on the rows of *all* domains it sees (source and target),
so every domain is mapped by the same statistics; inside a cross-validation
fold that means the fold's training rows only.  It ignores ``y``, so it sits
in a ``Pipeline`` before any transferkit estimator.

Example
-------
>>> import pandas as pd
>>> from transferkit.preprocessing import TabularPreprocessor
>>> df = pd.DataFrame({"age": [30, None, 50], "city": ["a", "b", None]})
>>> TabularPreprocessor().fit_transform(df).shape
(3, 4)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from transferkit.validation import TransferKitInputError, check_matrix, check_unique_columns

__all__ = ["TabularPreprocessor", "split_column_types"]


def split_column_types(frame: pd.DataFrame) -> tuple[list, list]:
    """Return ``(numeric_columns, categorical_columns)`` of a DataFrame."""
    numeric, categorical = [], []
    for column in frame.columns:
        dtype = frame[column].dtype
        if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            categorical.append(column)
        else:
            numeric.append(column)
    return numeric, categorical


class PowerOfTwoScaling(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Each column divided by the power of two nearest its largest magnitude.

    :math:`x_j / 2^{e_j}` with :math:`\\max_i |x_{ij}| / 2^{e_j} \\in [0.5, 1)` is
    exact in floating point, so the standardisation after it gives the same
    values, but its variances neither underflow (columns around 1e-300 would
    otherwise be standardised to zeros) nor overflow (from about 1e154).

    >>> PowerOfTwoScaling().fit_transform(np.array([[3.0], [-0.5]])).ravel().tolist()
    [0.75, -0.125]
    """

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            peak = np.nanmax(np.abs(np.where(np.isfinite(X), X, np.nan)), axis=0,
                             initial=0.0) if X.size else np.zeros(X.shape[1])
        peak = np.nan_to_num(peak, nan=0.0)
        self.exponents_ = np.where(peak > 0, np.frexp(peak)[1], 0).astype(int)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        check_is_fitted(self, "exponents_")
        return np.ldexp(np.asarray(X, dtype=np.float64), -self.exponents_)


class TabularPreprocessor(TransformerMixin, BaseEstimator):
    """Impute, standardise and one-hot encode a mixed-type table.

    Parameters
    ----------
    max_categories : int, default=50
        Most frequent levels kept per categorical column; rarer levels share
        one "infrequent" indicator.

    Attributes
    ----------
    feature_names_in_ : ndarray of str
        Input columns seen at fit time (DataFrame input only).
    numeric_columns_, categorical_columns_ : list
        How each input column was treated.
    n_features_out_ : int
        Width of the transformed matrix.
    """

    def __init__(self, max_categories: int = 50):
        self.max_categories = max_categories

    def fit(self, X, y=None):
        frame = self._as_frame(X, fitting=True)
        if frame.shape[0] == 0:
            raise TransferKitInputError("Cannot fit the preprocessor on an empty table.")
        numeric, categorical = split_column_types(frame)
        numeric_values = frame[numeric].to_numpy(dtype=float) if numeric else None
        if numeric_values is not None and np.isinf(numeric_values).any():
            bad = [c for c in numeric if np.isinf(frame[c].to_numpy(dtype=float)).any()]
            raise TransferKitInputError(
                f"Columns {bad[:10]} contain infinite values; replace them with a finite "
                "value or NaN (missing values are imputed)."
            )
        steps = []
        if numeric:
            steps.append(
                (
                    "numeric",
                    make_pipeline(
                        PowerOfTwoScaling(),
                        SimpleImputer(strategy="median", add_indicator=True,
                                      keep_empty_features=True),
                        StandardScaler(),
                    ),
                    numeric,
                )
            )
        if categorical:
            steps.append(
                (
                    "categorical",
                    make_pipeline(
                        SimpleImputer(strategy="most_frequent", missing_values=pd.NA,
                                      keep_empty_features=True),
                        OneHotEncoder(
                            handle_unknown="infrequent_if_exist",
                            max_categories=self.max_categories,
                            sparse_output=False,
                            dtype=np.float64,
                        ),
                    ),
                    categorical,
                )
            )
        self.numeric_columns_ = numeric
        self.categorical_columns_ = categorical
        self.transformer_ = ColumnTransformer(steps, sparse_threshold=0.0)
        self.transformer_.fit(self._prepare(frame))
        self.n_features_out_ = int(self.transformer_.transform(self._prepare(frame.iloc[:1])).shape[1])
        return self

    def transform(self, X):
        check_is_fitted(self, "transformer_")
        frame = self._as_frame(X, fitting=False)
        out = self.transformer_.transform(self._prepare(frame))
        return np.asarray(out, dtype=np.float64)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "transformer_")
        return self.transformer_.get_feature_names_out()

    def _prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Categorical columns as object dtype with ``pd.NA`` for missing."""
        frame = frame.copy()
        for column in self.categorical_columns_:
            values = frame[column].astype(object)
            frame[column] = values.where(values.notna(), pd.NA).map(
                lambda v: v if v is pd.NA else str(v)
            ).astype(object)
        for column in self.numeric_columns_:
            raw = frame[column]
            values = pd.to_numeric(raw, errors="coerce")
            unparsed = values.isna().to_numpy() & raw.notna().to_numpy()
            if unparsed.any():
                examples = list(pd.unique(raw[unparsed].astype(str)))[:5]
                raise TransferKitInputError(
                    f"Column {column!r} was numeric when the preprocessor was fitted but "
                    f"holds non-numeric values {examples}; fix them or leave the cells "
                    "empty (missing values are imputed)."
                )
            values = values.astype(float)
            if np.isinf(values.to_numpy()).any():
                raise TransferKitInputError(
                    f"Column {column!r} contains infinite values; replace them with a "
                    "finite value or NaN (missing values are imputed)."
                )
            frame[column] = values
        return frame

    def _as_frame(self, X, fitting: bool) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            frame = X
            check_unique_columns(frame.columns, "The table")
            if fitting:
                self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
                self.n_features_in_ = frame.shape[1]
                self._array_input = False
            elif getattr(self, "_array_input", False):
                frame = pd.DataFrame(check_matrix(frame.to_numpy(), allow_nan=True))
            else:
                expected = list(self.feature_names_in_)
                missing = [c for c in expected if c not in frame.columns]
                if missing:
                    raise TransferKitInputError(
                        f"Missing columns {missing[:10]}: the model was fitted with columns "
                        f"{expected[:20]}. Provide every column it was trained on."
                    )
                frame = frame[expected]
        else:
            if not fitting and not getattr(self, "_array_input", True):
                raise TransferKitInputError(
                    "The preprocessor was fitted on a DataFrame with columns "
                    f"{list(self.feature_names_in_)[:20]}; pass a DataFrame with these "
                    f"columns, not a {type(X).__name__}."
                )
            array = check_matrix(X, name="X", allow_nan=True)
            frame = pd.DataFrame(array)
            if fitting:
                self.__dict__.pop("feature_names_in_", None)
                self._array_input = True
                self.n_features_in_ = array.shape[1]
            elif array.shape[1] != getattr(self, "n_features_in_", array.shape[1]):
                raise TransferKitInputError(
                    f"X has {array.shape[1]} features but the preprocessor was fitted "
                    f"with {self.n_features_in_}."
                )
        return frame
