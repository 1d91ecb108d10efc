"""Pool mode of the simulated cluster: which candidate of a finite table a suggestion evaluates.

A finite table can only answer for its own rows, so every suggestion becomes one not yet
evaluated candidate: either the searcher chooses it itself (``"native"``, through
``set_candidates`` and the ``"__candidate_index__"`` key) or the simulator takes the nearest one
in ``candidate_features()`` space (``"nearest"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

POOL_MODES = ("auto", "native", "nearest", "off")
CANDIDATE_INDEX_KEY = "__candidate_index__"


def resolve_pool_mode(pool_mode: str, blackbox: Any, searcher: Any, candidates: pd.DataFrame | None) -> str:
    """The pool mode actually used: ``"auto"`` is native, else nearest, else off.

    Raises:
        ValueError: if ``pool_mode`` is unknown or the blackbox/searcher cannot support it.
    """
    if pool_mode not in POOL_MODES:
        raise ValueError(f"pool_mode must be one of {POOL_MODES}, got {pool_mode!r}.")
    has_pool = candidates is not None
    chooses_from_pool = callable(getattr(searcher, "set_candidates", None))
    if pool_mode == "auto":
        if chooses_from_pool and not has_pool:
            raise ValueError(
                f"searcher {type(searcher).__name__} chooses among candidates (it has "
                f"set_candidates) but blackbox {blackbox!r} has no candidate pool; use a searcher "
                "over the search space."
            )
        pool_mode = "native" if chooses_from_pool else ("nearest" if has_pool else "off")
    if pool_mode in ("native", "nearest") and not has_pool:
        raise ValueError(
            f"pool_mode={pool_mode!r} needs a blackbox with candidates(); {blackbox!r} has none, "
            "use pool_mode='off'."
        )
    if pool_mode == "native" and not chooses_from_pool:
        raise ValueError(
            "pool_mode='native' needs a searcher with set_candidates(candidates, features); "
            f"{type(searcher).__name__} has none, use pool_mode='nearest'."
        )
    if pool_mode == "nearest" and not callable(getattr(blackbox, "features_of", None)):
        raise ValueError(f"pool_mode='nearest' needs blackbox.features_of(config); {blackbox!r} has none.")
    return pool_mode


class CandidatePool:
    """Tracks which candidates are still unevaluated and maps suggestions onto them.

    ``nearest(x) = argmin_{i unevaluated} ||features_i - features_of(x)||_2``.

    Example:
        >>> pool = CandidatePool(pd.DataFrame({"a": [0, 1]}), np.array([[0.0], [1.0]]))
        >>> pool.take(pool.nearest(np.array([0.9]))), pool.remaining
        (1, 1)
    """

    def __init__(self, candidates: pd.DataFrame, features: np.ndarray) -> None:
        self.configs: list[dict[str, Any]] = candidates.to_dict("records")
        self.features = np.asarray(features, dtype=float).reshape(len(self.configs), -1)
        self._unused = np.ones(len(self.configs), dtype=bool)
        self.remaining = len(self.configs)

    def nearest(self, features: np.ndarray) -> int:
        """Index of the unevaluated candidate closest to ``features`` (ties: lowest index)."""
        if not self.remaining:
            raise ValueError("the candidate pool is exhausted.")
        query = np.asarray(features, dtype=float).reshape(1, -1)
        distances = np.where(self._unused, ((self.features - query) ** 2).sum(axis=1), np.inf)
        return int(np.argmin(distances))

    def check_native(self, index: Any, searcher_name: str) -> int:
        """Validates a searcher-chosen index: inside the pool and not evaluated yet."""
        if not 0 <= int(index) < len(self.configs) or not self._unused[int(index)]:
            raise ValueError(
                f"{searcher_name} suggested candidate {index!r}, which is outside the pool of "
                f"{len(self.configs)} or already evaluated; each candidate runs at most once."
            )
        return int(index)

    def take(self, index: int) -> int:
        """Marks candidate ``index`` evaluated and returns it."""
        self._unused[index] = False
        self.remaining -= 1
        return index
