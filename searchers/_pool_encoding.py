"""Encodings for pool search: candidate tables to features in ``[0, 1]``, results to rank scores.

Used by ``searchers.pool_multi_objective``; both are plain functions over arrays and tables.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import norm, rankdata

LOG_SCALE_RATIO = 100.0
"""A positive numeric column whose max/min exceeds this is log-scaled before min-max scaling."""


def encode_candidates(candidates: pd.DataFrame) -> np.ndarray:
    r"""Feature matrix in ``[0, 1]`` for a table of candidates.

    Numeric column: ``x' = (x - min) / (max - min)``, applied to ``log(x)`` when all values are
    positive and ``max / min > 100`` (learning rates, parameter counts: their effect is
    multiplicative). Constant columns become 0. Any other column is one-hot encoded on its
    string form (columns in sorted category order).

    Args:
        candidates: ``n`` rows, one per candidate.

    Returns:
        ``n x d`` float array.

    Example:
        >>> encode_candidates(pd.DataFrame({"lr": [1e-5, 1e-3, 1e-1], "act": ["relu", "gelu", "relu"]}))
        array([[0. , 0. , 1. ],
               [0.5, 1. , 0. ],
               [1. , 0. , 1. ]])
    """
    blocks = []
    for name in candidates.columns:
        column = candidates[name]
        if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
            one_hot = pd.get_dummies(column.astype(str), dtype=float)
            blocks.append(one_hot.to_numpy())
            continue
        values = column.to_numpy(dtype=float)
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"candidates column {name!r} has missing or infinite values; fill them or "
                "pass features= explicitly"
            )
        low, high = values.min(), values.max()
        if low > 0 and high / low > LOG_SCALE_RATIO:
            values, low, high = np.log(values), math.log(low), math.log(high)
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
        blocks.append(scaled[:, None])
    return np.hstack(blocks) if blocks else np.zeros((len(candidates), 0))



def rank_normal_scores(values: np.ndarray) -> np.ndarray:
    r"""Per column, the normal scores of the ranks: ``y' = Phi^{-1}((rank(y) - 1/2) / n)``.

    Ties share their average rank. A strictly increasing map per column, so Pareto dominance
    between rows is unchanged.

    Example:
        >>> rank_normal_scores(np.array([[1.0], [100.0], [3.0]])).round(2)
        array([[-0.97],
               [ 0.97],
               [ 0.  ]])
    """
    return norm.ppf((rankdata(values, axis=0) - 0.5) / values.shape[0])
