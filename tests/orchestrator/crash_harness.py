"""Kill the driver of ``orchestrator run`` with SIGKILL at random moments, resume, and count the damage.

The experiment runs :func:`tests.orchestrator.crash_trainable.train`, which logs every epoch it
executes. Each kill waits until a random number of further epochs has been logged (so it lands
while trials run, whatever the machine's speed), plus a random fraction of an epoch, then sends
SIGKILL to the driver alone, as a user's ``kill -9`` or an OOM killer would, and starts
``orchestrator run --resume``; the last run goes to the end.

Figures: ``python -m tests.orchestrator.crash_harness /tmp/crash random 12 4 1.0 6``
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from orchestrator.methods import get_method

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_spec(root: Path, method: str, trials: int, epochs: int, epoch_s: float, concurrent: int) -> Path:
    """A spec for the crash trainable: ``trials`` configurations of ``epochs`` epochs each."""
    data = {
        "name": "crash",
        "trainable": "tests.orchestrator.crash_trainable:train",
        "search_space": {"x": {"type": "uniform", "low": 0.0, "high": 1.0}},
        "config": {"epochs": epochs, "epoch_s": epoch_s, "log_path": str(root / "epochs.jsonl")},
        "objectives": [{"name": "score", "mode": "max"}, {"name": "size", "mode": "min"}],
        "method": method,
        "budget": {"num_trials": trials, "max_concurrent": concurrent},
        "resources": {"cpu": 1},
        "storage_path": str(root / "results"),
        "seed": 0,
    }
    if get_method(method).scheduler is not None:  # e.g. mo-asha: a trial is complete after `epochs`
        data["scheduler"] = {"max_t": epochs}
    path = root / "crash.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _logged_epochs(log: Path) -> int:
    return sum(1 for _ in open(log)) if log.exists() else 0


def kill_and_resume(
    root: str | Path,
    method: str = "random",
    trials: int = 12,
    epochs: int = 4,
    epoch_s: float = 1.0,
    kills: int = 6,
    concurrent: int = 2,
    seed: int = 0,
    timeout_s: float = 900.0,
) -> dict[str, Any]:
    """Run, kill ``kills`` times, resume to the end; what was lost, repeated and wasted."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    spec = write_spec(root, method, trials, epochs, epoch_s, concurrent)
    log = root / "epochs.jsonl"
    needed = trials * epochs
    rng = random.Random(seed)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    started = time.monotonic()
    attempt = killed = 0
    report_status = None
    while True:
        args = [sys.executable, "-m", "orchestrator", "run", str(spec)] + (["--resume"] if attempt else [])
        with open(root / f"run{attempt}.log", "w") as output:
            driver = subprocess.Popen(
                args, env={**env, "CRASH_RUN": str(attempt)}, stdout=output, stderr=subprocess.STDOUT, cwd=REPO_ROOT
            )
        attempt += 1
        if killed < kills:
            # Kill after a random share of what is left, so the kills spread over the whole run.
            target = _logged_epochs(log) + rng.randint(1, max(1, (needed - _logged_epochs(log)) // (kills - killed + 1)))
            while driver.poll() is None and _logged_epochs(log) < target:
                if time.monotonic() - started > timeout_s:
                    driver.kill()
                    raise TimeoutError(f"no progress in {timeout_s} s; see {root}/run{attempt - 1}.log")
                time.sleep(0.05)
            if driver.poll() is None:
                time.sleep(rng.uniform(0, epoch_s))
                driver.send_signal(signal.SIGKILL)
                driver.wait()
                killed += 1
                if killed == kills:  # a killed run can be reported on before it is resumed
                    report_status = _report(root, env)
                continue
        final_status = driver.wait(timeout=max(1.0, timeout_s - (time.monotonic() - started)))
        break
    figures = summarise(root, trials, epochs, killed, concurrent, final_status, time.monotonic() - started)
    figures["report_after_kill_status"] = report_status
    figures["state_repairs"] = state_repairs(root, attempt)
    return figures


def state_repairs(root: Path, runs: int) -> list[str]:
    """What each resume mended in the killed driver's state (the repair warnings of ``run<N>.log``)."""
    repairs = []
    for attempt in range(1, runs):
        for line in (root / f"run{attempt}.log").read_text(errors="replace").splitlines():
            if "The driver was killed" in line:
                repairs.append(f"run{attempt}: {line[line.index('The driver was killed'):][:160]}")
    return repairs


def _report(root: Path, env: dict[str, str]) -> int:
    """``orchestrator report`` on the killed run; its output goes to ``report_after_kill.log``."""
    args = [sys.executable, "-m", "orchestrator", "report", str(root / "results" / "crash")]
    with open(root / "report_after_kill.log", "w") as output:
        return subprocess.run(args, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=REPO_ROOT).returncode


def summarise(root: Path, trials: int, epochs: int, kills: int, concurrent: int, exit_status: int,
              wall_s: float) -> dict[str, Any]:
    """The figures of one crash run, from the epoch log and the final ``results.csv``."""
    runs = pd.DataFrame([json.loads(line) for line in open(root / "epochs.jsonl")])
    results = pd.read_csv(root / "results" / "crash" / "results.csv")
    # A restart from scratch after epoch 2 began: epoch 1 had reported its checkpoint by then.
    seen_epoch = runs.groupby("x")["epoch"].cummax().groupby(runs["x"]).shift(fill_value=0)
    scratch = (runs["epoch"] == 1) & (seen_epoch >= 2)
    scratch_with_checkpoint = int(scratch.sum())
    needed = trials * epochs
    return {
        "kills": kills,
        "exit_status": exit_status,
        "wall_s": round(wall_s, 1),
        "trials_in_results": len(results),
        "completed_in_results": int((results["status"] == "completed").sum()),
        "configurations_run": int(runs["x"].nunique()),
        "restarts_from_scratch_with_checkpoint": scratch_with_checkpoint,
        # Which configuration, and in which driver run (run0 is the first; "run" is None in logs from before)
        "restarted_from_scratch": [
            {"x": round(float(row["x"]), 6), "run": row.get("run")} for _, row in runs[scratch].iterrows()
        ],
        "epochs_needed": needed,
        "epochs_executed": len(runs),
        "epochs_repeated": len(runs) - int(runs.drop_duplicates(["x", "epoch"]).shape[0]),
        "repeat_allowance": kills * concurrent,
        "wasted_pct": round(100 * (len(runs) - needed) / needed, 1),
    }


if __name__ == "__main__":
    arguments = sys.argv[1:]
    names = ["root", "method", "trials", "epochs", "epoch_s", "kills"]
    kinds = [str, str, int, int, float, int]
    options = {name: kind(value) for name, kind, value in zip(names, kinds, arguments)}
    print(json.dumps(kill_and_resume(**options)))
