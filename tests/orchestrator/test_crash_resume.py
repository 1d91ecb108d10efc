"""A driver killed with SIGKILL at random moments and resumed each time loses and repeats nothing.

Runs ``orchestrator run`` in a subprocess (its own local Ray each time) through
:func:`tests.orchestrator.crash_harness.kill_and_resume`: 3 kills while 8 trials of 3 checkpointed
epochs run 2 at a time, then ``--resume`` to the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.orchestrator.crash_harness import REPO_ROOT, _logged_epochs, kill_and_resume, summarise, write_spec

pytestmark = pytest.mark.ray


def test_sigkill_of_the_driver_and_resume_loses_and_repeats_nothing(tmp_path):
    trials, epochs, kills = 8, 3, 3
    figures = kill_and_resume(tmp_path, "random", trials=trials, epochs=epochs, epoch_s=0.5, kills=kills)
    # In full (pytest would cut a dict short), with what each resume mended: CI logs are all we get.
    shown = json.dumps(figures, indent=1)

    assert figures["kills"] == kills, shown
    assert figures["exit_status"] == 0, shown
    # No finished trial lost, none left unfinished.
    assert figures["trials_in_results"] == trials, shown
    assert figures["completed_in_results"] == trials, shown
    # No configuration suggested twice, no trial restarted from scratch that had a checkpoint.
    assert figures["configurations_run"] == trials, shown
    assert figures["restarts_from_scratch_with_checkpoint"] == 0, shown
    # At most the epoch each running trial was in when the driver died is repeated.
    assert figures["epochs_repeated"] <= figures["repeat_allowance"], shown
    # The killed run could be reported on before the resume.
    assert figures["report_after_kill_status"] == 0, shown
    assert "Pareto front:" in (tmp_path / "report_after_kill.log").read_text()


def test_sigterm_stops_the_run_as_ctrl_c_does_and_a_resume_finishes_it(tmp_path):
    """Kubernetes and Slurm send SIGTERM first. Seen before: Ray's handler killed the driver with a
    stack dump, and after Ctrl-C the run exited 0 with a front of the trials so far."""
    trials, epochs = 6, 3
    spec = write_spec(tmp_path, "random", trials, epochs, epoch_s=0.5, concurrent=2)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "orchestrator", "run", str(spec)]
    with open(tmp_path / "run0.log", "w") as output:
        driver = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    started = time.monotonic()
    while _logged_epochs(tmp_path / "epochs.jsonl") < 4 and time.monotonic() - started < 300:
        time.sleep(0.05)
    driver.send_signal(signal.SIGTERM)
    stopped = driver.wait(timeout=120)
    log = (tmp_path / "run0.log").read_text()

    assert stopped == 130, log[-3000:]
    assert f"continue with: orchestrator run {spec} --resume" in log
    statuses = pd.read_csv(tmp_path / "results" / "crash" / "results.csv")["status"]
    assert set(statuses) <= {"completed", "interrupted"} and (statuses == "completed").sum() < trials, statuses
    assert "*** SIGTERM received" not in log  # Ray's stack dump when the driver dies on it

    with open(tmp_path / "run1.log", "w") as output:
        resumed = subprocess.run([*command, "--resume"], env=env, stdout=output, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    figures = summarise(tmp_path, trials, epochs, 1, 2, resumed.returncode, 0.0)
    shown = json.dumps(figures, indent=1)
    assert figures["exit_status"] == 0, shown
    assert figures["completed_in_results"] == trials, shown
    assert figures["configurations_run"] == trials, shown
    assert figures["restarts_from_scratch_with_checkpoint"] == 0, shown
