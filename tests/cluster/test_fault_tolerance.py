"""Tests for cluster.fault_tolerance: a retry re-raises what the trial raised, never trains again.

The end-to-end behaviour on a cluster that loses nodes is in tests/cluster/test_node_loss.py.
"""

from __future__ import annotations

import threading
import types

import pytest

from cluster import fault_tolerance
from cluster.fault_tolerance import RECORD_SUFFIX, StopRetryingRaisedTrials, recorded_failure, retry_only_lost_trials


@pytest.fixture
def in_trial(monkeypatch):
    """Calls run as Tune trial ``trial_a/1`` (an id with a character unsafe in file names)."""
    monkeypatch.setattr(fault_tolerance, "_current_trial_id", lambda: "trial_a/1")


def counting(error: BaseException | None = None):
    calls = []

    def train(config):
        calls.append(config)
        if error is not None:
            raise error
        return len(calls)

    return train, calls


def test_a_retry_re_raises_the_recorded_error_without_training(tmp_path, in_trial, no_handoff):
    train, calls = counting(ValueError("lr: got 3.0; use lr < 1."))
    wrapped = retry_only_lost_trials(train, tmp_path)
    for _ in range(3):  # the first attempt and two retries
        with pytest.raises(ValueError, match=r"^lr: got 3.0; use lr < 1.$"):
            wrapped({"lr": 3.0})
    assert len(calls) == 1
    assert [path.name for path in tmp_path.iterdir()] == ["trial_a_1" + RECORD_SUFFIX]
    assert str(recorded_failure(tmp_path, "trial_a/1")) == "lr: got 3.0; use lr < 1."


def test_a_trial_that_did_not_raise_trains_again_on_retry(tmp_path, in_trial):
    train, calls = counting()
    wrapped = retry_only_lost_trials(train, tmp_path)
    assert wrapped({}) == 1 and wrapped({}) == 2  # e.g. its node died between the two calls
    assert list(tmp_path.iterdir()) == []


def test_tunes_stop_signal_is_not_recorded(tmp_path, in_trial):
    train, calls = counting(SystemExit(0))
    wrapped = retry_only_lost_trials(train, tmp_path)
    with pytest.raises(SystemExit):
        wrapped({})
    assert wrapped.__wrapped__ is train and list(tmp_path.iterdir()) == []


def test_an_exception_that_cannot_be_pickled_is_kept_as_its_text(tmp_path, in_trial, no_handoff):
    class HoldsALock(Exception):
        def __init__(self):
            super().__init__("stuck")
            self.lock = threading.Lock()

    train, calls = counting(HoldsALock())
    wrapped = retry_only_lost_trials(train, tmp_path)
    with pytest.raises(HoldsALock):
        wrapped({})
    with pytest.raises(RuntimeError, match=r"^HoldsALock: stuck$"):
        wrapped({})
    assert len(calls) == 1


def test_an_unreadable_record_still_fails_the_retry(tmp_path, in_trial):
    (tmp_path / ("trial_a_1" + RECORD_SUFFIX)).write_bytes(b"not a pickle")
    train, calls = counting()
    with pytest.raises(RuntimeError, match="the trial raised before its retry"):
        retry_only_lost_trials(train, tmp_path)({})
    assert calls == []


def test_outside_a_trial_nothing_is_recorded(tmp_path):
    train, calls = counting(KeyError("x"))
    wrapped = retry_only_lost_trials(train, tmp_path)
    for _ in range(2):
        with pytest.raises(KeyError):
            wrapped({})
    assert len(calls) == 2 and list(tmp_path.iterdir()) == []


def test_class_and_generator_trainables_are_refused(tmp_path):
    from ray import tune

    def generator(config):
        yield {}

    for trainable in (tune.Trainable, generator):
        with pytest.raises(ValueError, match=r"^trainable: got .*wraps function trainables"):
            retry_only_lost_trials(trainable, tmp_path)


@pytest.fixture
def no_handoff(monkeypatch):
    monkeypatch.setattr(fault_tolerance, "_HANDOFF_S", 0)


def test_the_callback_ends_retries_of_a_trial_that_raised_and_keeps_them_for_lost_ones(tmp_path, in_trial, no_handoff):
    callback = StopRetryingRaisedTrials(tmp_path / "records")
    raised = types.SimpleNamespace(trial_id="trial_a/1", num_failures=1, max_failures=3)
    lost = types.SimpleNamespace(trial_id="trial_b", num_failures=1, max_failures=-1)
    callback.on_step_begin(iteration=0, trials=[raised, lost])  # no record folder yet
    wrapped = retry_only_lost_trials(counting(ValueError("boom"))[0], tmp_path / "records")
    with pytest.raises(ValueError):
        wrapped({})
    callback.on_step_begin(iteration=1, trials=[raised, lost])
    assert (raised.max_failures, lost.max_failures) == (1, -1), "the failure on its way (the 2nd) ends it"
    raised.max_failures = 3  # as if Tune handled the failure before the step: on_trial_recover
    callback.on_trial_recover(iteration=2, trials=[raised, lost], trial=raised)
    callback.on_trial_recover(iteration=2, trials=[raised, lost], trial=lost)
    assert (raised.max_failures, lost.max_failures) == (1, -1)


def test_the_wrapper_waits_before_raising_so_that_tunes_loop_sees_the_record(tmp_path, in_trial, monkeypatch):
    slept = []
    monkeypatch.setattr(fault_tolerance.time, "sleep", slept.append)
    with pytest.raises(ValueError):
        retry_only_lost_trials(counting(ValueError("boom"))[0], tmp_path)({})
    assert slept == [fault_tolerance._HANDOFF_S] and fault_tolerance._HANDOFF_S >= 0.5


def test_tune_trials_still_recover_by_num_failures_up_to_max_failures():
    """The callback relies on Trial.should_recover (Ray 2.60); this fails loudly if Ray changes it."""
    from ray.tune.experiment import Trial

    trial = Trial("__fake", max_failures=1, stub=True)
    trial.run_metadata.num_failures = 1
    assert trial.should_recover() and trial.num_failures == 1
    trial.max_failures = 0
    assert not trial.should_recover()
