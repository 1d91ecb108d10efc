"""A folder of finished simulated runs, so a report or a second CLI call reuses them.

A run is stored under a key made of everything that decides its history: the blackbox (name,
instance, objectives and, for a finite pool, a hash of the candidates and their full-fidelity
values), the method, seed, budget and number of workers, the versions of Ray, Ax, BoTorch,
hyperopt and PyTorch, and a hash of the source code that runs it (``searchers``,
``schedulers``, the simulator, the blackboxes, the method registry). Editing any of those files
makes earlier entries unreachable rather than silently stale.

Example:
    >>> cache = RunCache("/tmp/bench-cache")  # doctest: +SKIP
    >>> history = cache.load(blackbox, "pool-mobo", seed=0, budget=200, workers=4)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import pickle
import re
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["RunCache", "code_fingerprint"]

_PROJECT_ROOT = Path(__file__).resolve().parents[1]
# What a run's history depends on; report and summary code is not listed, so editing it keeps the cache.
_RUN_SOURCES = (
    "searchers",
    "schedulers",
    "multiobjective",
    "benchmarks/blackboxes",
    "benchmarks/simulator.py",
    "benchmarks/_sim_events.py",
    "benchmarks/_sim_trial.py",
    "benchmarks/_sim_pool.py",
    "benchmarks/runner.py",
    "orchestrator/methods.py",
)
_LIBRARIES = ("ray", "ax-platform", "botorch", "hyperopt", "optuna", "torch", "yahpo-gym")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 over the run-shaping source files and the versions of the libraries they drive."""
    digest = hashlib.sha256()
    for entry in _RUN_SOURCES:
        path = _PROJECT_ROOT / entry
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(_PROJECT_ROOT)).encode())
            digest.update(file.read_bytes())
    for library in _LIBRARIES:
        try:
            version = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{library}=={version}".encode())
    return digest.hexdigest()


def _blackbox_fingerprint(blackbox: Any) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([blackbox.name, blackbox.instance, dict(blackbox.objectives)]).encode())
    fidelity = getattr(blackbox, "fidelity", None)
    digest.update(repr(fidelity).encode())
    candidates = blackbox.candidates() if callable(getattr(blackbox, "candidates", None)) else None
    if candidates is not None:
        digest.update(pd.util.hash_pandas_object(candidates, index=True).to_numpy().tobytes())
        values = [blackbox.evaluate_candidate(i) for i in range(len(candidates))]
        digest.update(json.dumps(values, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text))


class RunCache:
    """Histories of finished runs in ``directory``, one pickle per (blackbox, method, seed, budget, workers).

    Writes are atomic (a temporary file renamed into place), so parallel workers and an
    interrupted report never leave a half-written entry.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise ValueError(f"cache directory={str(directory)!r} exists and is not a folder; choose another path.")
        self._blackbox_keys: dict[int, str] = {}

    def path(self, blackbox: Any, method: str, *, seed: int, budget: int, workers: int) -> Path:
        """Where the run with these settings is stored (whether or not it exists yet)."""
        key = self._blackbox_keys.get(id(blackbox))
        if key is None:
            key = self._blackbox_keys[id(blackbox)] = _blackbox_fingerprint(blackbox)
        digest = hashlib.sha256(f"{key}|{code_fingerprint()}".encode()).hexdigest()[:16]
        name = f"{_safe(method)}-seed{seed}-budget{budget}-workers{workers}-{digest}.pkl"
        return self.directory / _safe(blackbox.name) / _safe(blackbox.instance) / name

    def load(self, blackbox: Any, method: str, *, seed: int, budget: int, workers: int) -> pd.DataFrame | None:
        """The stored history (``attrs["from_cache"]`` set), or ``None`` if never stored or unreadable."""
        path = self.path(blackbox, method, seed=seed, budget=budget, workers=workers)
        if not path.is_file():
            return None
        try:
            with path.open("rb") as file:
                history = pickle.load(file)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            return None
        if not isinstance(history, pd.DataFrame):
            return None
        history.attrs["from_cache"] = True
        return history

    def store(self, blackbox: Any, history: pd.DataFrame, *, method: str, seed: int, budget: int, workers: int) -> Path:
        """Saves ``history`` (with its ``attrs``) and returns its path."""
        path = self.path(blackbox, method, seed=seed, budget=budget, workers=workers)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                stored = history.copy()
                stored.attrs = {k: v for k, v in history.attrs.items() if k != "from_cache"}
                pickle.dump(stored, file, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path
