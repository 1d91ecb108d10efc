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


def test_the_prepared_choice_is_the_models_choice_from_the_same_results_and_hyperparameters():
    background, reproducible = make(), make(background=False)
    for i in range(4):
        run(background, f"t{i}")
    settle(background)
    used = []  # the model state each worker choice was made with (a fit may follow it)
    choose = background._model_choice

    def recording_choice(*args, **kwargs):
        index = choose(*args, **kwargs)
        used.append(background._fitted)
        return index

    background._model_choice = recording_choice
    background.suggest("running")
    settle(background)
    for name in ("_observations", "_pending", "_num_suggested"):
        setattr(reproducible, name, getattr(background, name))
    reproducible._fitted = used[-1]
    expected = reproducible._model_choice(reproducible._available(), *reproducible._model_inputs(), fit_due=False)
    assert background.suggest("next")[CANDIDATE_INDEX_KEY] == expected


def test_a_suggestion_never_waits_for_a_hyperparameter_fit(monkeypatch):
    import searchers.pool_multi_objective as pool_module

    searcher = make()
    for i in range(4):
        run(searcher, f"t{i}")
    settle(searcher)
    fitted_before = searcher._fitted[2]
    entered, release, finished = (__import__("threading").Event() for _ in range(3))
    original = pool_module.fit_gpytorch_mll

    def slow_fit(mll):
        entered.set()
        release.wait(timeout=30)
        result = original(mll)
        finished.set()
        return result

    monkeypatch.setattr(pool_module, "fit_gpytorch_mll", slow_fit)
    # Results arrive until a fit is due: the worker prepares its choice first, then fits.
    step = 4
    while not entered.is_set():
        run(searcher, f"t{step}")
        step += 1
        assert entered.wait(timeout=5) or step < 12, "no hyperparameter fit was ever due"
    assert searcher._fitting and searcher._worker.busy
    for trial_id in ("u1", "u2"):  # both answered while the fit still runs
        config = searcher.suggest(trial_id)
        assert config is not None
        searcher.on_trial_complete(trial_id, objectives(config[CANDIDATE_INDEX_KEY]))
    assert not finished.is_set()
    release.set()
    settle(searcher)
    assert finished.is_set() and searcher._fitted[2] > fitted_before and not searcher._fitting


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
