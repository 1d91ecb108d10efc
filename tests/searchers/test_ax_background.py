"""AxMultiObjectiveSearch in background mode: prepared suggestions, staleness, the journal, errors."""

from __future__ import annotations

import json
import threading
import time

import cloudpickle
import pytest
from ray import tune

from searchers import AxMultiObjectiveSearch
from searchers._background import BackgroundWorkerError

SPACE = {"x": tune.uniform(0.0, 1.0), "y": tune.uniform(0.0, 1.0)}


def make_searcher(**options) -> AxMultiObjectiveSearch:
    options = {"metric": ["f", "g"], "mode": ["max", "min"], "seed": 0, "method": "random_search", **options}
    return AxMultiObjectiveSearch(SPACE, **options)


def values(config: dict) -> dict:
    return {"f": config["x"] + config["y"], "g": (config["x"] - 0.3) ** 2 + config["y"], "training_iteration": 1}


def finish(searcher: AxMultiObjectiveSearch, trial_id: str, config: dict) -> None:
    """As Tune reports a trial's last result: ``on_trial_result``, then ``on_trial_complete``."""
    searcher.on_trial_result(trial_id, values(config))
    searcher.on_trial_complete(trial_id, values(config))


def settle(searcher: AxMultiObjectiveSearch) -> None:
    searcher._worker.wait_idle()
    searcher._worker.raise_error()


def statuses(searcher: AxMultiObjectiveSearch) -> dict[int, str]:
    return {i: t.status.name for i, t in searcher.client._experiment.trials.items()}


def test_the_next_suggestion_is_prepared_while_trials_run():
    searcher = make_searcher(max_concurrent=2)
    first = searcher.suggest("t1")
    settle(searcher)
    # One slot free: that one plus one more are prepared, made with t1 as a pending point.
    prepared = [item[1] for item in searcher._ready]
    assert len(prepared) == 2
    second = searcher.suggest("t2")
    assert (second["x"], second["y"]) == (prepared[0]["x"], prepared[0]["y"])
    settle(searcher)
    assert len(searcher._ready) == 1  # no free slot: one ahead
    assert searcher.suggest("t3") is None  # max_concurrent holds in background mode too
    assert first != second


def test_a_prepared_suggestion_is_remade_once_refresh_after_results_arrived():
    searcher = make_searcher(max_concurrent=3, refresh_after=2)
    searcher._burst = lambda: 1  # trials that end one at a time (timing would decide otherwise)
    configs = {f"t{i}": searcher.suggest(f"t{i}") for i in range(3)}
    settle(searcher)
    stale = searcher._ready[0][0]
    finish(searcher, "t0", configs["t0"])
    settle(searcher)
    assert searcher._ready[0][0] == stale  # one result: still fresh
    finish(searcher, "t1", configs["t1"])
    settle(searcher)
    assert stale not in [item[0] for item in searcher._ready]
    assert statuses(searcher)[stale] == "ABANDONED"
    assert all(seen == 2 for _, _, seen in searcher._ready)


def test_a_burst_of_trial_ends_keeps_that_many_suggestions_ready():
    searcher = make_searcher(max_concurrent=4)
    configs = {f"t{i}": searcher.suggest(f"t{i}") for i in range(4)}
    settle(searcher)
    assert len(searcher._ready) == 1  # every slot busy, no burst seen yet: one ahead
    for trial_id, config in configs.items():  # four trials end together, as a wave
        finish(searcher, trial_id, config)
    for i in range(4, 8):
        searcher.suggest(f"t{i}")
    settle(searcher)
    # Every slot is busy again, but the next wave would find four ready, not one.
    assert searcher._burst() == 4
    assert len(searcher._ready) == 4
    assert len(set(item[0] for item in searcher._ready)) == 4


def test_suggestions_kept_for_a_burst_are_not_stale_within_it():
    searcher = make_searcher(max_concurrent=3, refresh_after=2)
    item = (0, {}, 10)
    searcher._results_seen = 11
    assert not searcher._is_stale(item)
    searcher._results_seen = 12
    assert searcher._is_stale(item)  # refresh_after results since it was made
    assert not searcher._is_stale(item, burst=3)  # kept for a wave of three: two more allowed
    searcher._results_seen = 14
    assert searcher._is_stale(item, burst=3)
    assert not searcher._is_stale((0, {}, None), burst=1)  # given by the user: never stale


def test_trial_end_times_are_not_carried_to_another_process():
    searcher = make_searcher(max_concurrent=2)
    config = searcher.suggest("t0")
    finish(searcher, "t0", config)
    assert len(searcher._trial_ends) == 1
    copy = cloudpickle.loads(cloudpickle.dumps(searcher))
    assert len(copy._trial_ends) == 0 and copy._burst() >= 1


def test_results_reach_ax_and_client_shows_only_the_trials_that_ran():
    searcher = make_searcher(max_concurrent=2)
    for i in range(4):
        config = searcher.suggest(f"t{i}")
        finish(searcher, f"t{i}", config)
    by_status = statuses(searcher)
    assert sorted(s for s in by_status.values() if s != "ABANDONED") == ["COMPLETED"] * 4
    assert searcher._ready == type(searcher._ready)()  # prepared ones were abandoned, not kept


def test_save_while_results_wait_in_the_inbox_restores_them(tmp_path):
    searcher = make_searcher(max_concurrent=2)
    configs = {f"t{i}": searcher.suggest(f"t{i}") for i in range(2)}
    settle(searcher)
    searcher._worker.stop()  # nothing is applied from now on: the results stay in the inbox
    finish(searcher, "t0", configs["t0"])
    searcher.on_trial_result("t1", values(configs["t1"]))
    assert [entry[0] for entry in searcher._inbox] == ["data", "complete", "data"]
    path = tmp_path / "state.json"
    searcher.save(str(path))

    restored = make_searcher()
    restored.restore(str(path))
    assert restored._live == {"t1": searcher._live["t1"]}
    by_status = statuses(restored)
    assert by_status[searcher._finished["t0"]] == "COMPLETED"
    assert restored.client._experiment.lookup_data().df["trial_index"].nunique() == 2


def test_the_journal_replays_generated_trials_with_their_indices_and_parameters(tmp_path):
    searcher = make_searcher(max_concurrent=2)
    configs = {f"t{i}": searcher.suggest(f"t{i}") for i in range(2)}
    settle(searcher)
    finish(searcher, "t0", configs["t0"])
    settle(searcher)
    path = tmp_path / "state.json"
    searcher.save(str(path))
    state = json.loads(path.read_text())
    assert {entry[0] for entry in state["journal"]} >= {"generated", "complete"}

    restored = make_searcher()
    restored.restore(str(path))
    original = searcher.client._experiment.trials
    again = restored.client._experiment.trials
    assert sorted(again) == sorted(original)
    assert all(again[i].arm.parameters == original[i].arm.parameters for i in original)
    config = restored.suggest("t9")
    assert (config["x"], config["y"]) not in {(c["x"], c["y"]) for c in configs.values()}


def test_a_long_journal_is_folded_into_a_new_snapshot_when_the_worker_is_idle():
    searcher = make_searcher(max_concurrent=1)
    config = searcher.suggest("t0")
    settle(searcher)
    before = searcher._snapshot
    for step in range(30):
        searcher.on_trial_result("t0", {**values(config), "training_iteration": step + 1})
    settle(searcher)
    searcher._worker.wake()  # an idle step: nothing to prepare
    settle(searcher)
    assert searcher._snapshot != before and len(searcher._journal) < 25


def test_a_failing_background_step_surfaces_in_the_next_hook():
    searcher = make_searcher(max_concurrent=2)
    config = searcher.suggest("t0")
    settle(searcher)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    searcher._client.attach_data = broken
    searcher.on_trial_complete("t0", values(config))
    searcher._worker.wait_idle()
    with pytest.raises(BackgroundWorkerError, match="disk full"):
        searcher.suggest("t1")


def test_a_pickled_searcher_in_background_mode_carries_its_state():
    searcher = make_searcher(max_concurrent=2)
    config = searcher.suggest("t0")
    finish(searcher, "t0", config)
    clone = cloudpickle.loads(cloudpickle.dumps(searcher))
    assert clone._worker is not None and clone._worker is not searcher._worker
    assert statuses(clone)[searcher._finished["t0"]] == "COMPLETED"
    assert clone.suggest("t1") is not None


def test_version_2_checkpoints_still_load(tmp_path):
    searcher = make_searcher(background=False, max_concurrent=2)
    config = searcher.suggest("t0")
    searcher.suggest("t1")
    finish(searcher, "t0", config)
    path = tmp_path / "state.json"
    searcher.save(str(path))
    state = json.loads(path.read_text())
    assert state["journal"] == []  # the reproducible mode snapshots once per generated suggestion
    # What version 2 wrote: the whole client (journal applied), ready items as pairs, no journal.
    searcher._take_snapshot()
    old = {**json.loads(searcher._state_text()), "version": 2}
    old["ready"] = [item[:2] for item in old.pop("ready")]
    del old["journal"], old["results_seen"]
    path.write_text(json.dumps(old))
    restored = make_searcher(background=False)
    restored.restore(str(path))
    assert statuses(restored) == statuses(searcher)
    assert restored._live == searcher._live


def test_a_step_still_running_at_exit_is_finished_not_killed():
    # A daemon thread killed inside PyTorch or Ax aborts the interpreter (SIGABRT, seen at the
    # end of Tune runs): at exit every live worker is stopped, waiting for its step.
    import subprocess
    import sys

    script = (
        "import time\n"
        "from searchers._background import BackgroundWorker\n"
        "done = []\n"
        "worker = BackgroundWorker(lambda: (time.sleep(1.0), done.append(1), print('step done', flush=True)), 'exit')\n"
        "worker.wake()\n"
        "time.sleep(0.2)\n"
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr
    assert "step done" in finished.stdout


def stall_model_steps(searcher: AxMultiObjectiveSearch) -> threading.Event:
    """Make every later Ax model step block until the returned event is set."""
    gate = threading.Event()
    generate = searcher._client.get_next_trials

    def stalled(*args, **kwargs):
        gate.wait(timeout=60)
        return generate(*args, **kwargs)

    searcher._client.get_next_trials = stalled
    return gate


def in_space(config: dict) -> bool:
    return 0.0 <= config["x"] <= 1.0 and 0.0 <= config["y"] <= 1.0


def stall_with_nothing_prepared(searcher: AxMultiObjectiveSearch) -> tuple[dict, threading.Event]:
    """t0 running, t1 finished, nothing prepared, and the model step after t1 stalled at the gate."""
    first = searcher.suggest("t0")
    settle(searcher)
    second = searcher.suggest("t1")
    settle(searcher)
    searcher._ready.clear()  # nothing prepared: the next suggest waits for the stalled step
    gate = stall_model_steps(searcher)
    finish(searcher, "t1", second)
    return first, gate


def test_a_stalled_model_step_hands_out_a_random_configuration_that_ax_then_learns_from(caplog):
    searcher = make_searcher(max_concurrent=2, max_wait_s=0.2)
    first, gate = stall_with_nothing_prepared(searcher)
    started = time.monotonic()
    fallback = searcher.suggest("t2")
    waited = time.monotonic() - started
    assert in_space(fallback) and waited < 5.0  # the step has run past max_wait_s, not 60 s
    assert searcher._live["t2"] == "fallback-1"
    assert searcher.random_fallbacks == 1  # counted where users and benchmarks can read it
    assert "handed out a random configuration" in caplog.text
    gate.set()
    settle(searcher)
    index = searcher._live["t2"]
    assert isinstance(index, int)  # attached once the stalled step ended
    trial = searcher.client._experiment.trials[index]
    assert trial.status.name == "RUNNING" and trial.arm.parameters == {"x": fallback["x"], "y": fallback["y"]}
    finish(searcher, "t2", fallback)
    finish(searcher, "t0", first)
    assert statuses(searcher)[index] == "COMPLETED"
    assert searcher.suggest("t3") is not None


def test_a_fallback_saved_before_ax_knew_it_is_restored_as_one_trial(tmp_path):
    searcher = make_searcher(max_concurrent=2, max_wait_s=0.2)
    _, gate = stall_with_nothing_prepared(searcher)
    fallback = searcher.suggest("t2")
    finish(searcher, "t2", fallback)  # finished before the stalled step ended
    path = tmp_path / "state.json"
    searcher.save(str(path))
    journal = json.loads(path.read_text())["journal"]
    assert [entry[0] for entry in journal][-3:] == ["fallback", "data", "complete"]
    assert journal[-1][1] == "fallback-1"  # Ax has no index for it yet
    gate.set()
    settle(searcher)

    for saved in (path, tmp_path / "after.json"):
        if saved.name == "after.json":
            searcher.save(str(saved))
        restored = make_searcher()
        restored.restore(str(saved))
        index = restored._finished["t2"]
        trial = restored.client._experiment.trials[index]
        assert trial.status.name == "COMPLETED"
        assert trial.arm.parameters == {"x": fallback["x"], "y": fallback["y"]}
        assert restored.random_fallbacks == 1
        assert restored.suggest("t3") is not None


def test_a_restored_searcher_draws_a_new_fallback_not_the_first_again(tmp_path):
    """Seen in a SIGKILL and --resume run of ax-mobo: the first fallback after the resume repeated
    the configuration of the fallback before the kill, and both trials ran it."""
    searcher = make_searcher(max_concurrent=2, max_wait_s=0.2)
    first, gate = stall_with_nothing_prepared(searcher)
    fallback = searcher.suggest("t2")
    path = tmp_path / "state.json"
    searcher.save(str(path))
    gate.set()
    settle(searcher)

    restored = make_searcher(max_concurrent=2, max_wait_s=0.2)
    restored.restore(str(path))
    restored._ready.clear()
    gate = stall_model_steps(restored)
    finish(restored, "t0", first)
    again = restored.suggest("t3")
    assert restored._live["t3"] == "fallback-2" and restored.random_fallbacks == 2
    assert in_space(again) and again != fallback
    gate.set()
    settle(restored)


def test_with_max_wait_none_suggest_waits_for_the_model():
    searcher = make_searcher(max_concurrent=1, max_wait_s=None)
    config = searcher.suggest("t0")
    settle(searcher)
    searcher._ready.clear()  # nothing prepared: the next suggest waits for the stalled step
    gate = stall_model_steps(searcher)
    finish(searcher, "t0", config)
    threading.Timer(0.5, gate.set).start()
    started = time.monotonic()
    searcher.suggest("t1")
    assert time.monotonic() - started >= 0.4
    assert isinstance(searcher._live["t1"], int) and searcher.random_fallbacks == 0


def test_a_step_is_overdue_only_well_past_the_usual_step_time():
    searcher = make_searcher(max_wait_s=1.0)
    searcher._step_seconds.extend([2.0] * 5)
    searcher._step_started = time.monotonic() - 5.0
    assert not searcher._step_overdue()  # 5 s < 3 x the usual 2 s
    searcher._step_started = time.monotonic() - 6.5
    assert searcher._step_overdue()
    searcher._step_seconds.clear()  # no history yet (the first model step): max_wait_s alone
    searcher._step_started = time.monotonic() - 1.5
    assert searcher._step_overdue()
    searcher._step_started = None  # no step running
    assert not searcher._step_overdue()


@pytest.mark.parametrize("options, match", [
    ({"background": "yes"}, "background='yes': expected True or False"),
    ({"refresh_after": 0}, "refresh_after=0 must be a positive integer or None"),
    ({"max_wait_s": 0}, "max_wait_s=0 must be a number of seconds > 0 or None"),
    ({"max_wait_s": float("nan")}, "max_wait_s=nan must be a number of seconds > 0 or None"),
])
def test_background_options_are_checked(options, match):
    with pytest.raises(ValueError, match=match):
        make_searcher(**options)
