"""PoolMultiObjectiveSearch in background mode: prepared choices, staleness, pickling, errors."""

from __future__ import annotations

import cloudpickle
import numpy as np
import pandas as pd
import pytest

from searchers._background import BackgroundWorkerError
from searchers.pool_multi_objective import CANDIDATE_INDEX_KEY, PoolMultiObjectiveSearch

POOL = pd.DataFrame({"x": np.linspace(0.0, 1.0, 41), "y": np.linspace(1.0, 0.0, 41) ** 2})


def objectives(index: int) -> dict:
    x, y = POOL.x[index], POOL.y[index]
    return {"a": float(x + 0.1 * y), "b": float((1 - x) ** 2 + 0.2 * y)}


def make(**options) -> PoolMultiObjectiveSearch:
    options = {"metric": ["a", "b"], "mode": ["max", "min"], "num_initial": 3, "seed": 0, "max_concurrent": 2, **options}
    return PoolMultiObjectiveSearch(POOL, **options)


def run(searcher: PoolMultiObjectiveSearch, trial_id: str) -> int:
    index = searcher.suggest(trial_id)[CANDIDATE_INDEX_KEY]
    searcher.on_trial_complete(trial_id, objectives(index))
    return index


def settle(searcher: PoolMultiObjectiveSearch) -> None:
    searcher._worker.wait_idle()
    searcher._worker.raise_error()


def test_the_model_choice_is_prepared_while_trials_run_and_handed_out():
    searcher = make()
    for i in range(4):
        run(searcher, f"t{i}")
    searcher.suggest("running")
    settle(searcher)
    prepared = searcher._prepared
    assert prepared is not None and prepared[1:] == (4, 5)  # 4 results seen, for the 6th suggestion
    chosen = searcher.suggest("next")[CANDIDATE_INDEX_KEY]
    assert chosen == prepared[0] and chosen != searcher._pending["running"]


def test_the_prepared_choice_equals_what_the_reproducible_mode_computes():
    background, reproducible = make(), make(background=False)
    for searcher in (background, reproducible):
        for i in range(4):
            run(searcher, f"t{i}")
        searcher.suggest("running")
    settle(background)
    assert background.suggest("next") == reproducible.suggest("next")


def test_a_stale_or_taken_choice_is_not_used():
    searcher = make(refresh_after=1)
    for i in range(4):
        run(searcher, f"t{i}")
    settle(searcher)
    index, seen, made_before = searcher._prepared
    searcher._observations[99] = [0.0, 1.0]  # one more result than the choice saw
    assert searcher._take_prepared(searcher._available()) is None
    searcher._prepared = (index, seen + 1, made_before)
    searcher._pending["elsewhere"] = index  # its candidate was taken meanwhile
    assert searcher._take_prepared(searcher._available()) is None


def test_a_pickled_searcher_gets_a_worker_of_its_own_and_suggests():
    searcher = make()
    for i in range(4):
        run(searcher, f"t{i}")
    clone = cloudpickle.loads(cloudpickle.dumps(searcher))
    assert clone._worker is not None and clone._worker is not searcher._worker
    assert clone.suggest("t9")[CANDIDATE_INDEX_KEY] not in searcher.evaluated_indices


def test_a_failing_background_step_surfaces_in_the_next_suggest(monkeypatch):
    searcher = make()
    for i in range(3):
        run(searcher, f"t{i}")

    def broken(*args):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(searcher, "_training_data", broken)
    searcher._worker.wake()  # the next choice is prepared in the background, and fails there
    searcher._worker.wait_idle()
    with pytest.raises(BackgroundWorkerError, match="out of memory"):
        searcher.suggest("t3")


@pytest.mark.parametrize("options, match", [
    ({"background": 1}, "background=1: expected True or False"),
    ({"refresh_after": 0}, "refresh_after=0: expected an integer >= 1 or None"),
])
def test_background_options_are_checked(options, match):
    with pytest.raises(ValueError, match=match):
        make(**options)
