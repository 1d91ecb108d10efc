"""From a Pareto row to a model: find, export and load the last checkpoint of a trial.

A Tune run leaves one folder per trial under the experiment directory, holding the checkpoints
the trainable reported (Ray 2.60 layout)::

    <experiment_dir>/<trainable>_<trial_id>_<n>_<params>_<date>/
        result.json                   one JSON line per report, each with "trial_id"
        checkpoint_000000/ ...        one folder per reported checkpoint, numbered from 0
        checkpoint_000001/trial_state.pt

:func:`export_pareto` copies the last checkpoint of every trial of ``pareto_front.csv`` into
``<out_dir>/pareto/<trial_id>/checkpoint/`` beside ``config.json`` and ``metrics.json``;
:func:`load_checkpoint` reads back what :func:`orchestrator.trainable.report_epoch` saved, from
an export or from the experiment directory, without Ray. :func:`checkpoint_config` bounds how
many checkpoints each trial keeps on disk.

Example:
    >>> folder = export_pareto("results/digits")  # doctest: +SKIP
    >>> print_export_summary(folder)  # doctest: +SKIP
    >>> state = load_checkpoint("results/digits", "2159dd0c")  # doctest: +SKIP
    >>> model.load_state_dict(state["model"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from orchestrator.results import CHECKPOINT_COLUMN, CONFIG_PREFIX, PARETO_FILENAME, config_columns

__all__ = [
    "CHECKPOINTS_TO_KEEP",
    "checkpoint_config",
    "checkpoint_path",
    "export_pareto",
    "export_summary",
    "find_checkpoint",
    "load_checkpoint",
    "print_export_summary",
]

EXPORT_DIRNAME = "pareto"
"""Folder that :func:`export_pareto` writes under ``out_dir``, one sub-folder per trial."""
CHECKPOINT_DIRNAME = "checkpoint"
"""Sub-folder of ``pareto/<trial_id>/`` holding a copy of the trial's last checkpoint."""
CONFIG_JSON = "config.json"
METRICS_JSON = "metrics.json"
SUMMARY_FILENAME = "summary.csv"
"""One row per exported trial: ``trial_id``, ``exported`` (folder), ``source``, ``warning``."""

CHECKPOINTS_TO_KEEP = 2
"""Checkpoints each trial keeps on disk: the latest and the one before it.

Ray 2.60 (``ray/train/_internal/checkpoint_manager.py``) deletes the oldest checkpoints beyond
``num_to_keep`` when no ``checkpoint_score_attribute`` is set, and never deletes the latest one,
which is the one ``Tuner.restore`` resumes a trial from (``Trial.checkpoint``). It also forces an
experiment-state snapshot every ``num_to_keep`` checkpoints of a trial
(``ray/tune/execution/experiment_state.py``), so with 2 the snapshot that a resume reads always
names a checkpoint still on disk except in the instant between a deletion and that forced
snapshot; with 1 that instant follows every report. A score attribute would keep the best
checkpoints by one metric, which a multi-objective search has no single choice of.
"""

_CHECKPOINT_PREFIX = "checkpoint_"
_TRIAL_FILES = ("result.json", "params.json")  # what marks a folder as one trial's


def checkpoint_config() -> Any:
    """The ``ray.tune.CheckpointConfig`` that keeps the latest :data:`CHECKPOINTS_TO_KEEP` checkpoints.

    Pass it as ``tune.RunConfig(checkpoint_config=checkpoint_config())``; resumed runs keep it,
    because ``Tuner.restore`` reads the run config saved with the experiment.

    Example:
        >>> checkpoint_config().num_to_keep, checkpoint_config().checkpoint_score_attribute
        (2, None)
    """
    from ray import tune

    return tune.CheckpointConfig(num_to_keep=CHECKPOINTS_TO_KEEP)


def checkpoint_path(result: Any) -> str:
    """The folder of a ``ray.tune.Result``'s last checkpoint, or ``""`` when it has none.

    ``Result.checkpoint.path`` (the latest checkpoint Tune registered) when that folder exists;
    otherwise the highest-numbered ``checkpoint_*`` folder under ``Result.path``, which is the
    case of a restored run whose saved experiment state predates the trial's last report (or
    that was moved); otherwise ``Result.checkpoint.path`` as recorded (remote storage, which is
    not checked), or ``""``.

    Example:
        >>> from types import SimpleNamespace
        >>> checkpoint_path(SimpleNamespace(checkpoint=None, path="/nowhere/trial"))
        ''
    """
    checkpoint = getattr(result, "checkpoint", None)  # stand-ins for Result in tests may lack it
    recorded = str(checkpoint.path) if checkpoint is not None else ""
    if recorded and Path(recorded).is_dir():
        return recorded
    newest = _newest_checkpoint(Path(str(result.path))) if result.path else None
    return str(newest) if newest is not None else recorded


def export_pareto(experiment_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Copy the last checkpoint of every Pareto trial into ``<out_dir>/pareto/<trial_id>/``.

    Reads ``pareto_front.csv`` from ``experiment_dir``. Each trial gets ``config.json`` (its
    hyperparameters, ``config/`` stripped and ``a/b`` nested back into ``{"a": {"b": ...}}``),
    ``metrics.json`` (every other column of its row: objectives, ``trial_id``, ``status``,
    ``training_iteration``, ...; missing and non-finite values as ``null``) and ``checkpoint/``, a copy of the folder named in its
    ``checkpoint`` column, or else of the newest ``checkpoint_*`` folder of its trial directory.
    A trial without a checkpoint gets the JSON files and a ``warning`` in ``summary.csv``.
    An earlier export in the same place is replaced as a whole.

    Args:
        experiment_dir: the directory ``orchestrator run`` wrote (``storage_path/name``).
        out_dir: where to create ``pareto/``; defaults to ``experiment_dir``.

    Returns:
        The ``pareto`` folder; :func:`export_summary` reads what it holds.

    Raises:
        FileNotFoundError: if ``experiment_dir`` has no ``pareto_front.csv``.
        ValueError: if ``pareto_front.csv`` has no ``trial_id`` column.

    Example:
        >>> folder = export_pareto("results/digits")  # doctest: +SKIP
        >>> sorted(p.name for p in (folder / "2159dd0c").iterdir())  # doctest: +SKIP
        ['checkpoint', 'config.json', 'metrics.json']
    """
    experiment_dir = Path(experiment_dir)
    front = _read_pareto_front(experiment_dir)
    out_dir = experiment_dir if out_dir is None else Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trial_dirs = _trial_directories(experiment_dir)
    config_names = config_columns(front)
    destination = out_dir / EXPORT_DIRNAME
    # Built beside the old export and swapped in at the end: a failed export leaves the old one,
    # and a source inside the old export (re-exporting an export) is read before it goes.
    staging = Path(tempfile.mkdtemp(prefix=f".{EXPORT_DIRNAME}-", dir=out_dir))
    try:
        summary = [_export_trial(row, config_names, trial_dirs, staging) for _, row in front.iterrows()]
        pd.DataFrame(summary, columns=["trial_id", "exported", "source", "warning"]).to_csv(
            staging / SUMMARY_FILENAME, index=False
        )
        if destination.exists():
            shutil.rmtree(destination)
        staging.rename(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def export_summary(folder: str | Path) -> pd.DataFrame:
    """What :func:`export_pareto` exported into ``folder``: one row per trial.

    Columns ``trial_id``, ``exported`` (the trial's folder), ``source`` (the checkpoint copied,
    empty when none) and ``warning`` (empty when all went well).

    Example:
        >>> export_summary(export_pareto("results/digits"))  # doctest: +SKIP
    """
    path = Path(folder) / SUMMARY_FILENAME
    if not path.is_file():
        raise FileNotFoundError(
            f"folder: got {str(folder)!r}, which has no {SUMMARY_FILENAME}; pass the folder that "
            "export_pareto returned (<out_dir>/pareto)."
        )
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def print_export_summary(folder: str | Path, file: TextIO | None = None) -> None:
    """Print :func:`export_summary`: where each Pareto trial went, warnings first in their line.

    Example:
        >>> print_export_summary(export_pareto("results/digits"))  # doctest: +SKIP
        Exported 3 Pareto trials to results/digits/pareto
          2159dd0c: results/digits/pareto/2159dd0c
        ...
    """
    file = sys.stdout if file is None else file
    summary = export_summary(folder)
    print(f"Exported {len(summary)} Pareto trials to {folder}", file=file)
    for row in summary.itertuples(index=False):
        warning = f"  WARNING: {row.warning}" if row.warning else ""
        print(f"  {row.trial_id}: {row.exported}{warning}", file=file)


def find_checkpoint(directory: str | Path, trial_id: str) -> Path:
    """The last checkpoint folder of ``trial_id``, from an export or from the experiment's trials.

    Looks, in this order, in ``<directory>/pareto/<trial_id>/checkpoint`` (an experiment
    directory or ``out_dir`` after :func:`export_pareto`), ``<directory>/<trial_id>/checkpoint``
    (the ``pareto`` folder itself), then the newest ``checkpoint_*`` of the trial's folder under
    ``directory``. Use it for checkpoints that :func:`load_checkpoint` does not read.

    Raises:
        ValueError: if ``trial_id`` is neither exported nor a trial with a checkpoint; the
            message lists those that are.

    Example:
        >>> find_checkpoint("results/digits", "2159dd0c")  # doctest: +SKIP
        PosixPath('results/digits/pareto/2159dd0c/checkpoint')
    """
    directory = Path(directory)
    trial_id = str(trial_id)
    for exported in (directory / EXPORT_DIRNAME / trial_id, directory / trial_id):
        if (exported / CHECKPOINT_DIRNAME).is_dir():
            return exported / CHECKPOINT_DIRNAME
    trial_dirs = _trial_directories(directory)
    newest = _newest_checkpoint(trial_dirs[trial_id]) if trial_id in trial_dirs else None
    if newest is not None:
        return newest
    available = sorted(set(_exported_trial_ids(directory)) | {
        name for name, folder in trial_dirs.items() if _newest_checkpoint(folder) is not None
    })
    raise ValueError(
        f"trial_id: got {trial_id!r}, which has no checkpoint in {str(directory)!r}; use one of "
        f"{available}, or pass the experiment directory or the export's out_dir."
    )


def load_checkpoint(directory: str | Path, trial_id: str, map_location: Any = "cpu") -> dict[str, Any]:
    """What :func:`orchestrator.trainable.report_epoch` saved at the trial's last checkpoint.

    Needs no Ray session. The checkpoint is found by :func:`find_checkpoint`, so ``directory``
    is an experiment directory, an export's ``out_dir`` or its ``pareto`` folder.

    Args:
        directory: where to look (see above).
        trial_id: a ``trial_id`` of ``results.csv`` / ``pareto_front.csv``.
        map_location: passed to ``torch.load`` (``"cpu"`` loads GPU-trained weights anywhere).

    Returns:
        ``{"model": state_dict, "optimizer": state_dict or None, "epoch": int, "extra": ...}``.

    Raises:
        ValueError: for an unknown ``trial_id`` (the message names the available ones).
        FileNotFoundError: if the checkpoint was not written by ``report_epoch``; read its
            folder (:func:`find_checkpoint`) with what the trainable saved it with.

    Example:
        >>> state = load_checkpoint("results/digits", "2159dd0c")  # doctest: +SKIP
        >>> model = build_mlp(64, 10, hidden_width=221, num_layers=3, dropout=0.0)  # doctest: +SKIP
        >>> model.load_state_dict(state["model"])  # doctest: +SKIP
    """
    from orchestrator.trainable import read_trial_state

    return read_trial_state(find_checkpoint(directory, trial_id), map_location)


def _read_pareto_front(experiment_dir: Path) -> pd.DataFrame:
    path = experiment_dir / PARETO_FILENAME
    if not path.is_file():
        raise FileNotFoundError(
            f"experiment_dir: got {str(experiment_dir)!r}, which has no {PARETO_FILENAME}; pass the "
            "directory that `orchestrator run` printed, or run `orchestrator report DIR` to write it."
        )
    # Ray's trial ids are hex strings; "12345678" or "1e500000" must not become numbers.
    front = pd.read_csv(path, dtype={"trial_id": str, CHECKPOINT_COLUMN: str}, float_precision="round_trip")
    if "trial_id" not in front.columns:
        raise ValueError(
            f"{PARETO_FILENAME}: got columns {list(front.columns)}; it needs a trial_id column, which "
            "`orchestrator run` writes (rerun `orchestrator report DIR` with this version)."
        )
    return front


def _export_trial(
    row: pd.Series, config_names: list[str], trial_dirs: dict[str, Path], staging: Path
) -> dict[str, str]:
    trial_id = str(row["trial_id"])
    folder = staging / trial_id
    folder.mkdir()
    _write_json(folder / CONFIG_JSON, _nested_config(row[config_names]))
    _write_json(folder / METRICS_JSON, {str(k): _plain(v) for k, v in row.drop(config_names).items()})
    source = _source_checkpoint(row, trial_dirs)
    exported = str(staging.parent / EXPORT_DIRNAME / trial_id)
    if source is None:
        warning = (
            f"no checkpoint found for trial {trial_id}; exported config.json and metrics.json only "
            "(does the trainable report with checkpoint=..., e.g. orchestrator.trainable.report_epoch?)"
        )
        return {"trial_id": trial_id, "exported": exported, "source": "", "warning": warning}
    shutil.copytree(source, folder / CHECKPOINT_DIRNAME)
    return {"trial_id": trial_id, "exported": exported, "source": str(source), "warning": ""}


def _source_checkpoint(row: pd.Series, trial_dirs: dict[str, Path]) -> Path | None:
    recorded = row.get(CHECKPOINT_COLUMN)
    if isinstance(recorded, str) and recorded and Path(recorded).is_dir():
        return Path(recorded)
    # No column (a run from before it existed), or the experiment directory moved since.
    trial_dir = trial_dirs.get(str(row["trial_id"]))
    return None if trial_dir is None else _newest_checkpoint(trial_dir)


def _trial_directories(experiment_dir: Path) -> dict[str, Path]:
    """``trial_id -> trial folder`` for the folders of ``experiment_dir`` that Tune made for trials.

    The id is read from the first line of ``result.json`` (a custom ``trial_dirname_creator``
    may leave it out of the folder's name); a trial that never reported is named by its folder,
    as ``orchestrator.trials.results_frame`` names it.
    """
    if not experiment_dir.is_dir():
        return {}
    trials: dict[str, Path] = {}
    for folder in sorted(p for p in experiment_dir.iterdir() if p.is_dir()):
        if not any((folder / name).is_file() for name in _TRIAL_FILES):
            continue
        trials[_reported_trial_id(folder / "result.json") or folder.name] = folder
    return trials


def _reported_trial_id(result_json: Path) -> str | None:
    try:
        with result_json.open(encoding="utf-8") as lines:
            first = lines.readline()
        trial_id = json.loads(first).get("trial_id") if first.strip() else None
    except (OSError, ValueError, AttributeError):
        return None
    return str(trial_id) if trial_id else None


def _newest_checkpoint(trial_dir: Path) -> Path | None:
    """The highest-numbered ``checkpoint_<index>`` folder of a trial (Ray numbers them from 0)."""
    numbered = [
        (int(folder.name.removeprefix(_CHECKPOINT_PREFIX)), folder)
        for folder in (trial_dir.glob(_CHECKPOINT_PREFIX + "*") if trial_dir.is_dir() else [])
        if folder.is_dir() and folder.name.removeprefix(_CHECKPOINT_PREFIX).isdigit()
    ]
    return max(numbered)[1] if numbered else None


def _exported_trial_ids(directory: Path) -> list[str]:
    ids = []
    for root in (directory / EXPORT_DIRNAME, directory):
        if root.is_dir():
            ids += [p.name for p in root.iterdir() if (p / CHECKPOINT_DIRNAME).is_dir()]
    return ids


def _nested_config(flat: pd.Series) -> dict[str, Any]:
    """``{"config/a/b": 1}`` back to ``{"a": {"b": 1}}``; a missing value (NaN) is left out."""
    config: dict[str, Any] = {}
    for column, value in flat.items():
        value = _plain(value)
        if value is None:
            continue
        *parents, leaf = str(column).removeprefix(CONFIG_PREFIX).split("/")
        node = config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return config


def _plain(value: Any) -> Any:
    """A JSON-ready Python value: numpy scalars unwrapped; missing, NaN and +-inf as ``None``."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
