"""Tests for benchmarks._sim_pool: the candidate pool behind the simulator's pool modes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks._sim_pool import CandidatePool


def test_candidate_pool_nearest_and_exhaustion():
    pool = CandidatePool(pd.DataFrame({"a": [0, 1, 2]}), np.array([[0.0], [0.5], [1.0]]))
    assert pool.take(pool.nearest([0.6])) == 1
    assert pool.nearest([0.6]) == 2  # 0.4 away beats candidate 0, 0.6 away
    pool.take(0), pool.take(2)
    with pytest.raises(ValueError, match="exhausted"):
        pool.nearest([0.0])


def test_candidate_pool_rejects_a_native_index_outside_or_taken():
    pool = CandidatePool(pd.DataFrame({"a": [0, 1]}), np.array([[0.0], [1.0]]))
    assert pool.take(pool.check_native(1, "Searcher")) == 1
    for index in (1, 2, -1):
        with pytest.raises(ValueError, match=f"candidate {index}, .*at most once"):
            pool.check_native(index, "Searcher")
