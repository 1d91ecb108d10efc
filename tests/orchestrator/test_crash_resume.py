"""A driver killed with SIGKILL at random moments and resumed each time loses and repeats nothing.

Runs ``orchestrator run`` in a subprocess (its own local Ray each time) through
:func:`tests.orchestrator.crash_harness.kill_and_resume`: 3 kills while 8 trials of 3 checkpointed
epochs run 2 at a time, then ``--resume`` to the end.
"""

from __future__ import annotations

import json

import pytest

from tests.orchestrator.crash_harness import kill_and_resume

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
