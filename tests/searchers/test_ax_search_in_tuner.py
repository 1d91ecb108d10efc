"""AxMultiObjectiveSearch inside a plain ``tune.Tuner``: concurrency, ASHA, interruption + restore.

One local Ray session for the module (``ray.init`` costs seconds here).
"""

from __future__ import annotations

import os
import signal

import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402
from ray.tune import Callback  # noqa: E402
from ray.tune.schedulers import ASHAScheduler  # noqa: E402

from searchers import AxMultiObjectiveSearch  # noqa: E402

pytestmark = pytest.mark.ray

MAX_T = 4


def two_objective_trainable(config):
    """Branin-like trade-off: ``quality`` rises with x and iterations, ``cost`` rises with x and y."""
    x, y = config["x"], config["y"]
    for step in range(1, MAX_T + 1):
        quality = (1 - (x - 0.7) ** 2 - 0.3 * (y - 0.2) ** 2) * step / MAX_T
        cost = x**2 + 0.5 * y + 0.1 * config["width"] / 64
        tune.report({"quality": quality, "cost": cost})


SPACE = {"x": tune.uniform(0.0, 1.0), "y": tune.uniform(0.0, 1.0), "width": tune.choice([16, 32, 64])}


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _searcher(seed: int = 0, method: str = "fast") -> AxMultiObjectiveSearch:
    return AxMultiObjectiveSearch(
        SPACE,
        metric=["quality", "cost"],
        mode=["max", "min"],
        seed=seed,
        max_concurrent=2,
        max_progression=MAX_T,
        initialization_budget=6,
        method=method,
    )


def _config_key(config: dict) -> tuple:
    return (round(config["x"], 12), round(config["y"], 12), config["width"])


def test_twenty_trials_two_concurrent_with_asha(tmp_path):
    searcher = _searcher()
    scheduler = ASHAScheduler(metric="quality", mode="max", max_t=MAX_T, grace_period=1, reduction_factor=2)
    tuner = tune.Tuner(
        two_objective_trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher, scheduler=scheduler, num_samples=20, max_concurrent_trials=2, reuse_actors=True
        ),
        run_config=tune.RunConfig(name="ax_asha", storage_path=str(tmp_path), verbose=0),
    )
    grid = tuner.fit()

    assert len(grid) == 20
    assert grid.num_errors == 0
    keys = [_config_key(result.config) for result in grid]
    assert len(set(keys)) == 20, "a configuration was suggested twice"
    iterations = [result.metrics["training_iteration"] for result in grid]
    assert min(iterations) < MAX_T, "ASHA never stopped a trial early"
    assert max(iterations) == MAX_T
    summary = searcher.client.summarize()
    # Background mode prepares up to free slots + 1 suggestions ahead: the ones no trial took
    # (stale when results came in, or left at the end) end abandoned, and none of them ran.
    abandoned = summary["trial_status"] == "ABANDONED"
    ran = {(round(x, 12), round(y, 12)) for x, y, _ in keys}
    assert not {(round(x, 12), round(y, 12)) for x, y in summary.loc[abandoned, ["x", "y"]].values} & ran
    summary = summary[~abandoned]
    assert len(summary) == 20
    statuses = set(summary["trial_status"])
    assert statuses <= {"COMPLETED", "EARLY_STOPPED"}, statuses
    assert "EARLY_STOPPED" in statuses and "COMPLETED" in statuses
    assert "MBM" in set(summary["generation_node"]), "the Bayesian model never took over from Sobol"


class _InterruptAfter(Callback):
    """Sends SIGINT to the driver once ``count`` trials have completed, as Ctrl+C would.

    The Tuner pickles its callbacks, so the restored run gets this one back: the marker file
    makes it interrupt only the first run.
    """

    def __init__(self, count: int, marker) -> None:
        self.count = count
        self.marker = marker
        self.completed = 0

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.completed += 1
        if self.completed == self.count and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGINT)


def test_restore_after_interruption_continues_without_repeating(tmp_path):
    total = 12
    tuner = tune.Tuner(
        two_objective_trainable,
        tune_config=tune.TuneConfig(
            # Restoring is about the searcher's state, not its model: Ax's quasi-random
            # strategy keeps this test fast while still round-tripping the Ax snapshot.
            search_alg=_searcher(seed=1, method="random_search"), num_samples=total, max_concurrent_trials=2),
        run_config=tune.RunConfig(
            name="ax_restore", storage_path=str(tmp_path), verbose=0, callbacks=[_InterruptAfter(5, tmp_path / "interrupted")]
        ),
    )
    first = tuner.fit()
    finished_first = [r for r in first if r.metrics and r.metrics.get("training_iteration") == MAX_T]
    assert 5 <= len(finished_first) < total, "the run was not interrupted part-way"

    experiment_dir = str(tmp_path / "ax_restore")
    assert tune.Tuner.can_restore(experiment_dir)
    restored = tune.Tuner.restore(experiment_dir, trainable=two_objective_trainable, resume_unfinished=True)
    grid = restored.fit()

    assert len(grid) == total
    assert grid.num_errors == 0
    assert all(r.metrics.get("training_iteration") == MAX_T for r in grid)
    keys = [_config_key(r.config) for r in grid]
    assert len(set(keys)) == total, "a configuration was repeated after Tuner.restore"
    first_keys = {_config_key(r.config) for r in finished_first}
    assert first_keys <= set(keys)
