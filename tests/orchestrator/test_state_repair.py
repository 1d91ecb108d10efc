"""Tests for orchestrator.driver_state: a state file truncated by a kill is mended before a resume."""

from __future__ import annotations

import json
import os
import pickle
from types import SimpleNamespace

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.driver_state import (
    KeepLastCompleteSave,
    driver_lock,
    keep_tuner_state,
    repair_state_after_kill,
    repair_tuner_state,
    running_driver,
)
from orchestrator.spec import SpecError

SESSION = "2026-11-28_07-49-56"


def _experiment(tmp_path, truncated: bool):
    experiment_dir = tmp_path / "results" / "crash"
    (experiment_dir / "train_a_1").mkdir(parents=True)
    older = {"trial_data": [], "where": str(experiment_dir), "session": "older"}
    (experiment_dir / "experiment_state-2026-11-28_07-49-39.json").write_text(json.dumps(older))
    whole = json.dumps({"trial_data": [1, 2, 3], "where": str(experiment_dir)})
    (experiment_dir / f"experiment_state-{SESSION}.json").write_text(whole[: len(whole) // 2] if truncated else whole)
    (experiment_dir / f"searcher-state-{SESSION}.pkl").write_bytes(pickle.dumps({"rng": 1}))
    return experiment_dir, whole


def _staging(tmp_path, name: str, text: str, trial_dir: str = "train_a_1"):
    staging = tmp_path / "tmp" / "ray" / "session_x" / "artifacts" / "t" / name / "driver_artifacts"
    (staging / trial_dir).mkdir(parents=True)
    (staging / f"experiment_state-{SESSION}.json").write_text(text)
    (staging / f"searcher-state-{SESSION}.pkl").write_bytes(pickle.dumps({"rng": 2}))
    return staging


def test_whole_state_is_left_alone(tmp_path):
    experiment_dir, whole = _experiment(tmp_path, truncated=False)
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "whole"
    assert (experiment_dir / f"experiment_state-{SESSION}.json").read_text() == whole


def test_truncated_state_is_taken_from_the_killed_drivers_staging_copy(tmp_path):
    experiment_dir, whole = _experiment(tmp_path, truncated=True)
    _staging(tmp_path, "crash", whole)
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "from staging"
    assert json.loads((experiment_dir / f"experiment_state-{SESSION}.json").read_text())["trial_data"] == [1, 2, 3]
    assert pickle.loads((experiment_dir / f"searcher-state-{SESSION}.pkl").read_bytes()) == {"rng": 2}
    assert not list(experiment_dir.glob(".*.repair"))


def test_without_a_whole_copy_the_session_is_set_aside_and_the_one_before_is_used(tmp_path):
    experiment_dir, _ = _experiment(tmp_path, truncated=True)
    _staging(tmp_path, "crash", json.dumps({"where": "other"}), trial_dir="train_z_1")  # same name, other run
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "set aside"
    assert sorted(path.name for path in experiment_dir.glob("experiment_state-*.json")) == [
        "experiment_state-2026-11-28_07-49-39.json"
    ]
    assert (experiment_dir / f"experiment_state-{SESSION}.json.truncated").is_file()
    assert (experiment_dir / f"searcher-state-{SESSION}.pkl.truncated").is_file()


def test_a_whole_state_behind_the_killed_drivers_last_save_is_brought_up_to_date(tmp_path):
    """Seen in CI: killed before Tune copied its newest state, a trial restarted from scratch."""
    experiment_dir, _ = _experiment(tmp_path, truncated=False)
    newer = json.dumps({"trial_data": [1, 2, 3, 4], "where": str(experiment_dir)})
    _staging(tmp_path, "crash", newer)
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "from staging"
    assert json.loads((experiment_dir / f"experiment_state-{SESSION}.json").read_text())["trial_data"] == [1, 2, 3, 4]
    assert pickle.loads((experiment_dir / f"searcher-state-{SESSION}.pkl").read_bytes()) == {"rng": 2}
    # Mended once: the same staging copy changes nothing the second time.
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "whole"


def test_a_staging_copy_cut_between_trial_table_and_searcher_is_not_taken_over_a_whole_state(tmp_path):
    """Tune writes the table, then the searcher: a table newer than its searcher is a half save."""
    experiment_dir, whole = _experiment(tmp_path, truncated=False)
    staging = _staging(tmp_path, "crash", json.dumps({"trial_data": [1, 2, 3, 4], "where": str(experiment_dir)}))
    table = (staging / f"experiment_state-{SESSION}.json").stat().st_mtime_ns
    os.utime(staging / f"searcher-state-{SESSION}.pkl", ns=(table - 10**9, table - 10**9))
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "whole"
    assert (experiment_dir / f"experiment_state-{SESSION}.json").read_text() == whole
    assert pickle.loads((experiment_dir / f"searcher-state-{SESSION}.pkl").read_bytes()) == {"rng": 1}


def test_an_empty_search_generator_state_counts_as_truncated(tmp_path):
    """Seen after a kill: search_gen_state-<session>.json copied as 0 bytes while the table was whole."""
    experiment_dir, whole = _experiment(tmp_path, truncated=False)
    (experiment_dir / f"search_gen_state-{SESSION}.json").write_bytes(b"")
    staging = _staging(tmp_path, "crash", whole)
    (staging / f"search_gen_state-{SESSION}.json").write_bytes(pickle.dumps({"counter": 3}))
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "from staging"
    assert pickle.loads((experiment_dir / f"search_gen_state-{SESSION}.json").read_bytes()) == {"counter": 3}


def test_truncated_callback_states_scheduler_rungs_included_are_mended(tmp_path):
    experiment_dir, whole = _experiment(tmp_path, truncated=False)
    (experiment_dir / f"callback-states-{SESSION}.pkl").write_bytes(pickle.dumps({0: {"rungs": 1}})[:5])
    staging = _staging(tmp_path, "crash", whole)
    (staging / f"callback-states-{SESSION}.pkl").write_bytes(pickle.dumps({0: {"rungs": 2}}))
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "from staging"
    assert pickle.loads((experiment_dir / f"callback-states-{SESSION}.pkl").read_bytes()) == {0: {"rungs": 2}}


def test_an_emptied_tuner_state_is_put_back_from_the_copy_kept_at_start(tmp_path):
    """Seen in CI: a kill while Tuner.restore rewrote tuner.pkl left it empty (EOFError on resume)."""
    experiment_dir = tmp_path / "crash"
    experiment_dir.mkdir()
    (experiment_dir / "tuner.pkl").write_bytes(pickle.dumps({"run_config": "whole"}))
    keep_tuner_state(experiment_dir)
    assert not repair_tuner_state(experiment_dir)  # whole: left alone
    (experiment_dir / "tuner.pkl").write_bytes(b"")
    assert repair_tuner_state(experiment_dir)
    assert pickle.loads((experiment_dir / "tuner.pkl").read_bytes()) == {"run_config": "whole"}
    keep_tuner_state(experiment_dir)  # an empty file never replaces the kept copy
    (experiment_dir / "tuner.pkl").write_bytes(b"\x80")
    keep_tuner_state(experiment_dir)
    assert repair_tuner_state(experiment_dir)



def _staged_by_driver(tmp_path, session_dir: str, tables: dict[str, tuple[str, dict]]):
    """A (killed) driver's staging folder: ``{session: (trial table, searcher state)}``."""
    staging = tmp_path / "tmp" / "ray" / session_dir / "artifacts" / "t" / "crash" / "driver_artifacts"
    (staging / "train_a_1").mkdir(parents=True)
    for session, (text, searcher) in tables.items():
        (staging / f"experiment_state-{session}.json").write_text(text)
        (staging / f"searcher-state-{session}.pkl").write_bytes(pickle.dumps(searcher))
    return staging


LATER = "2026-11-28_07-51-02"  # the session of a resumed driver


def test_a_session_tune_never_copied_is_taken_from_the_killed_drivers_staging(tmp_path):
    """Killed before Tune's first copy of the resumed session: without it, everything since the
    resume would run again."""
    experiment_dir, whole = _experiment(tmp_path, truncated=False)
    table = json.dumps({"trial_data": [1, 2, 3, 4, 5]})
    _staged_by_driver(tmp_path, "session_2026-11-28_07-51-00_1_2", {SESSION: (whole, {"rng": 1}), LATER: (table, {"rng": 5})})
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "from staging"
    assert (experiment_dir / f"experiment_state-{LATER}.json").read_text() == table
    assert pickle.loads((experiment_dir / f"searcher-state-{LATER}.pkl").read_bytes()) == {"rng": 5}
    assert (experiment_dir / f"experiment_state-{SESSION}.json").read_text() == whole


def test_a_first_save_cut_by_the_kill_is_not_taken(tmp_path, caplog):
    experiment_dir, whole = _experiment(tmp_path, truncated=False)
    _staged_by_driver(tmp_path, "session_2026-11-28_07-51-00_1_2", {SESSION: (whole, {"rng": 1}), LATER: ('{"trial_d', {"rng": 5})})
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "whole"
    assert not (experiment_dir / f"experiment_state-{LATER}.json").exists()
    assert "killed while Tune first wrote" in caplog.text


def test_only_the_newest_drivers_copy_may_replace_a_whole_state(tmp_path, caplog):
    """An earlier driver's whole copy is older than the one the kill cut; the directory's copy is kept."""
    experiment_dir, whole = _experiment(tmp_path, truncated=False)
    _staged_by_driver(tmp_path, "session_2026-11-28_07-50-10_1_1", {SESSION: (json.dumps({"trial_data": [1]}), {"rng": 0})})
    _staged_by_driver(tmp_path, "session_2026-11-28_07-50-40_1_2", {SESSION: ('{"trial_data": [1, 2, 3, 4', {"rng": 3})})
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "whole"
    assert (experiment_dir / f"experiment_state-{SESSION}.json").read_text() == whole
    assert pickle.loads((experiment_dir / f"searcher-state-{SESSION}.pkl").read_bytes()) == {"rng": 1}
    assert "may be a step behind" in caplog.text


def test_the_newest_drivers_staging_copy_is_taken_over_an_earlier_drivers(tmp_path):
    experiment_dir, _ = _experiment(tmp_path, truncated=True)
    _staged_by_driver(tmp_path, "session_2026-11-28_07-50-10_1_1", {SESSION: (json.dumps({"trial_data": [1]}), {"rng": 0})})
    _staged_by_driver(tmp_path, "session_2026-11-28_07-50-40_1_2", {SESSION: (json.dumps({"trial_data": [1, 2]}), {"rng": 3})})
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "from staging"
    assert json.loads((experiment_dir / f"experiment_state-{SESSION}.json").read_text())["trial_data"] == [1, 2]
    assert pickle.loads((experiment_dir / f"searcher-state-{SESSION}.pkl").read_bytes()) == {"rng": 3}


def test_with_both_copies_cut_an_earlier_whole_copy_is_taken(tmp_path):
    """Better the session as an earlier staging folder holds it than no state of this session at all."""
    experiment_dir, _ = _experiment(tmp_path, truncated=True)
    _staged_by_driver(tmp_path, "session_2026-11-28_07-50-10_1_1", {SESSION: (json.dumps({"trial_data": [1]}), {"rng": 0})})
    _staged_by_driver(tmp_path, "session_2026-11-28_07-50-40_1_2", {SESSION: ('{"trial_da', {"rng": 3})})
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "from staging"
    assert json.loads((experiment_dir / f"experiment_state-{SESSION}.json").read_text())["trial_data"] == [1]
    assert pickle.loads((experiment_dir / f"searcher-state-{SESSION}.pkl").read_bytes()) == {"rng": 0}


# ----------------------------------------------------------------------------- the last complete save
def _keep(experiment_dir, staging):
    """What KeepLastCompleteSave does at the end of a Tune step whose save wrote ``staging``."""
    keeper = KeepLastCompleteSave()
    keeper.on_step_end(iteration=1, trials=[_trial(experiment_dir, staging)])
    return keeper


def _trial(experiment_dir, staging):
    """What the keeper reads of a Tune trial: its staging folder and its experiment directory."""
    return SimpleNamespace(local_experiment_path=str(staging), remote_experiment_path=str(experiment_dir))


def _cut_save(staging, table: str):
    """A kill during Tune's next save: the new table written, the searcher state still the old one."""
    (staging / f"experiment_state-{SESSION}.json").write_text(table)
    written = (staging / f"experiment_state-{SESSION}.json").stat().st_mtime_ns
    os.utime(staging / f"searcher-state-{SESSION}.pkl", ns=(written - 10**9, written - 10**9))


def test_the_last_complete_save_is_kept_whole_once_per_change(tmp_path):
    experiment_dir, _ = _experiment(tmp_path, truncated=False)
    staging = _staging(tmp_path, "crash", json.dumps({"trial_data": [1, 2, 3, 4]}))
    keeper = _keep(experiment_dir, staging)
    kept = experiment_dir / f".last-complete-save-{SESSION}.whole"
    files = pickle.loads(kept.read_bytes())
    assert json.loads(files[f"experiment_state-{SESSION}.json"])["trial_data"] == [1, 2, 3, 4]
    assert pickle.loads(files[f"searcher-state-{SESSION}.pkl"]) == {"rng": 2}
    first = kept.stat().st_mtime_ns
    os.utime(kept, ns=(first - 10**9, first - 10**9))
    keeper.on_step_end(iteration=2, trials=[_trial(experiment_dir, staging)])
    assert kept.stat().st_mtime_ns == first - 10**9  # nothing changed: not written again
    (staging / f"searcher-state-{SESSION}.pkl").write_bytes(pickle.dumps({"rng": 3}))
    keeper.on_step_end(iteration=3, trials=[_trial(experiment_dir, staging)])
    assert pickle.loads(pickle.loads(kept.read_bytes())[f"searcher-state-{SESSION}.pkl"]) == {"rng": 3}
    assert pickle.loads(pickle.dumps(keeper))._kept == {}  # tuner.pkl holds the callback, not the copy


def test_a_save_cut_by_the_kill_resumes_from_the_last_complete_save_not_an_older_copy(tmp_path, caplog):
    """Seen in CI: killed between Tune's table and searcher writes, the experiment directory's copy
    was steps behind, and a trial with a checkpoint restarted from scratch."""
    experiment_dir, _ = _experiment(tmp_path, truncated=False)  # the copy Tune synced, steps ago
    staging = _staging(tmp_path, "crash", json.dumps({"trial_data": [1, 2, 3, 4]}))
    _keep(experiment_dir, staging)
    _cut_save(staging, json.dumps({"trial_data": [1, 2, 3, 4, 5]}))
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "from kept copy"
    assert json.loads((experiment_dir / f"experiment_state-{SESSION}.json").read_text())["trial_data"] == [1, 2, 3, 4]
    assert pickle.loads((experiment_dir / f"searcher-state-{SESSION}.pkl").read_bytes()) == {"rng": 2}
    assert "last complete save" in caplog.text
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "whole"  # mended once


def test_with_every_copy_cut_the_kept_save_is_taken(tmp_path):
    experiment_dir, _ = _experiment(tmp_path, truncated=True)
    staging = _staging(tmp_path, "crash", json.dumps({"trial_data": [1, 2, 3, 4]}))
    _keep(experiment_dir, staging)
    (staging / f"experiment_state-{SESSION}.json").write_text('{"trial_da')
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "from kept copy"
    assert json.loads((experiment_dir / f"experiment_state-{SESSION}.json").read_text())["trial_data"] == [1, 2, 3, 4]
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "whole"  # mended once


def test_a_kept_session_tune_never_copied_is_resumed_from(tmp_path):
    """Killed in a resumed driver's second save, before Tune's first copy of the session."""
    experiment_dir, whole = _experiment(tmp_path, truncated=False)
    staging = _staged_by_driver(
        tmp_path, "session_2026-11-28_07-51-00_1_2",
        {SESSION: (whole, {"rng": 1}), LATER: (json.dumps({"trial_data": [1, 2, 3, 4, 5]}), {"rng": 5})},
    )
    _keep(experiment_dir, staging)
    (staging / f"experiment_state-{LATER}.json").write_text('{"trial_data": [1, 2, 3, 4, 5, 6')
    assert repair_state_after_kill(experiment_dir, temp_dir=str(tmp_path / "tmp")) == "from kept copy"
    assert json.loads((experiment_dir / f"experiment_state-{LATER}.json").read_text())["trial_data"] == [1, 2, 3, 4, 5]
    assert pickle.loads((experiment_dir / f"searcher-state-{LATER}.pkl").read_bytes()) == {"rng": 5}


# ----------------------------------------------------------------------------- one driver at a time
def test_a_second_driver_is_refused_naming_the_first(tmp_path):
    """Seen: a second --resume while the first driver ran: 64 epochs for 48, both exiting 0."""
    experiment_dir = tmp_path / "results" / "crash"
    assert running_driver(experiment_dir) is None
    with driver_lock(experiment_dir):
        assert running_driver(experiment_dir).startswith(f"pid {os.getpid()} on ")
        with pytest.raises(SpecError) as refused, driver_lock(experiment_dir):
            pass
        assert refused.value.field == "name"
        assert f"another driver (pid {os.getpid()} on " in str(refused.value) and "--resume" in str(refused.value)
    assert running_driver(experiment_dir) is None
    with driver_lock(experiment_dir):  # released at the end of the first
        pass


def test_a_killed_driver_leaves_no_lock_behind(tmp_path):
    experiment_dir = tmp_path / "results" / "crash"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from orchestrator.driver_state import driver_lock\n"
         f"with driver_lock(Path({str(experiment_dir)!r})):\n    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    assert holder.stdout.readline().strip() == "held"
    assert running_driver(experiment_dir).startswith(f"pid {holder.pid} on ")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    deadline = time.monotonic() + 10
    while running_driver(experiment_dir) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    with driver_lock(experiment_dir):
        pass
