"""A real Tune run with MultiObjectivePromotionASHA: trials pause at rungs and resume from checkpoints."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from schedulers import MultiObjectivePromotionASHA
from searchers import RandomSearch
from tests.schedulers.pause_trainable import train


@pytest.fixture(scope="module")
def paused_run(ray_session, tmp_path_factory):
    from ray import tune

    directory = tmp_path_factory.mktemp("pause-resume")
    log = directory / "epochs.log"
    space = {"quality": tune.uniform(0.5, 1.0), "ms": tune.uniform(1.0, 10.0), "epochs": 9, "log": str(log)}
    scheduler = MultiObjectivePromotionASHA(metric=["acc", "ms"], mode=["max", "min"], max_t=9,
                                            grace_period=1, reduction_factor=3)
    tuner = tune.Tuner(
        train,
        tune_config=tune.TuneConfig(search_alg=RandomSearch(space, ["acc", "ms"], ["max", "min"], seed=0),
                                    scheduler=scheduler, num_samples=12),
        run_config=tune.RunConfig(storage_path=str(directory), name="run", verbose=0),
    )
    grid = tuner.fit()
    events = defaultdict(list)
    for line in log.read_text().splitlines():
        trial_id, kind, epoch = line.split()
        events[trial_id].append((kind, int(epoch)))
    return grid, events


def test_every_trial_ends_and_none_errors(paused_run):
    grid, events = paused_run
    assert len(grid) == 12 and not grid.errors
    assert len(events) == 12


def test_paused_trials_resume_from_their_checkpoint_without_repeating_an_epoch(paused_run):
    _, events = paused_run
    resumed = {trial: starts for trial, log in events.items()
               if len(starts := [epoch for kind, epoch in log if kind == "start"]) > 1}
    assert resumed, "no trial was paused and resumed"
    for trial, log in events.items():
        epochs = [epoch for kind, epoch in log if kind == "epoch"]
        assert Counter(epochs).most_common(1)[0][1] == 1, f"{trial} repeated an epoch: {epochs}"
        assert epochs == list(range(len(epochs))), f"{trial} skipped or reordered epochs: {epochs}"
    for trial, starts in resumed.items():
        assert starts[0] == 0 and all(later > 0 for later in starts[1:])


def test_the_iteration_counter_continues_across_resumes(paused_run):
    grid, events = paused_run
    for result in grid:
        assert result.metrics["training_iteration"] == result.metrics["epoch"] + 1
    finished = [r for r in grid if r.metrics["training_iteration"] == 9]
    assert finished, "no trial was promoted to max_t"
    assert len(finished) < len(grid), "promotion ASHA let every trial run to the end"
