"""Tune's experiment state survives a driver killed at any moment (SIGKILL, OOM killer, lost node).

Tune (Ray 2.60) writes its state with plain writes: ``tuner.pkl`` when a run starts or resumes,
and at every step the session's trial table, searcher and callback states into the driver's
staging folder, which a background thread copies to the experiment directory. A kill during
any of these writes leaves a truncated file, or a trial table ahead of its searcher.
:class:`KeepLastCompleteSave` keeps, atomically, a copy of the last save Tune completed;
:func:`repair_tuner_state` and :func:`repair_state_after_kill` put whole files back before a
resume or a report. :func:`driver_lock` keeps a second driver off an experiment that one runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import pickle
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from ray.tune import Callback

from orchestrator._validation import SpecError

logger = logging.getLogger(__name__)


# Tune's per-session state files in the experiment directory (checked on Ray 2.60): Tune restores
# from the newest session's files. It writes them first into the driver's staging folder,
# /tmp/ray/session_<id>/artifacts/<time>/<experiment name>/driver_artifacts (the layout
# ray.train's StorageContext documents), then copies them to the experiment directory.
_SESSION_STATE_FILES = (
    "experiment_state-{}.json", "search_gen_state-{}.json", "searcher-state-{}.pkl", "callback-states-{}.pkl",
)
_STAGING_GLOB = "ray/session_*/artifacts/*/{name}/driver_artifacts"


_TUNER_STATE = "tuner.pkl"
_TUNER_STATE_COPY = ".tuner.pkl.whole"


def _lock_path(experiment_dir: Path) -> Path:
    # Beside the experiment directory, not in it: it holds through --fresh moving the run aside.
    return experiment_dir.parent / f".{experiment_dir.name}.driver.lock"


@contextlib.contextmanager
def driver_lock(experiment_dir: Path) -> Iterator[None]:
    """Hold the experiment's driver lock while this driver runs it; refuse if another holds it.

    Two drivers on one experiment (a second ``--resume`` by mistake, a job restarted while its
    first pod lingers) run the same trials twice and overwrite each other's state: seen, 64
    epochs run for 48 needed and 2 of 6 finished trials recorded as unfinished, both exiting 0.
    The lock is an ``flock`` on ``.<name>.driver.lock`` beside the experiment directory, which
    the kernel releases when the driver dies, even by SIGKILL. The file says which process holds it.

    Raises:
        SpecError: on ``name``, naming the process that holds the lock.
    """
    path = _lock_path(experiment_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SpecError(
                f"got {experiment_dir.name!r}, but another driver ({_holder(path)}) is running the experiment "
                f"in {experiment_dir}; wait for it to end, or stop it and continue with --resume, or choose a new name.",
                "name",
            ) from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
        yield
    finally:
        os.close(descriptor)  # releases the lock


def running_driver(experiment_dir: Path) -> str | None:
    """Which driver holds the experiment's lock (:func:`driver_lock`) now, or ``None``."""
    path = _lock_path(experiment_dir)
    if not path.is_file():
        return None
    descriptor = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _holder(path)
    finally:
        os.close(descriptor)
    return None


def _holder(path: Path) -> str:
    return path.read_text().strip() or "a process that has not said which"


def _write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a hidden file beside it: a kill leaves either file whole."""
    partial = target.with_name(f".{target.name}.repair")
    partial.write_bytes(data)
    os.replace(partial, target)


def _copy_atomically(source: Path, target: Path) -> None:
    _write_atomically(target, source.read_bytes())


def _loads(path: Path) -> bool:
    try:
        pickle.loads(path.read_bytes())
    except Exception:
        return False
    return True


def keep_tuner_state(experiment_dir: Path) -> None:
    """Keep a whole copy of Tune's ``tuner.pkl``, which every ``Tuner`` and ``Tuner.restore`` rewrites.

    Tune truncates and rewrites the file in place when a run starts or resumes (ray 2.60); a
    kill in between leaves it empty and the next resume fails (``EOFError``) before anything
    runs. :func:`repair_tuner_state` puts this copy back.
    """
    source = experiment_dir / _TUNER_STATE
    if source.is_file() and _loads(source):
        _copy_atomically(source, experiment_dir / _TUNER_STATE_COPY)


def repair_tuner_state(experiment_dir: Path) -> bool:
    """Put back the copy :func:`keep_tuner_state` kept when ``tuner.pkl`` does not load; whether it did."""
    state, copy = experiment_dir / _TUNER_STATE, experiment_dir / _TUNER_STATE_COPY
    if not state.is_file() or _loads(state) or not copy.is_file():
        return False
    _copy_atomically(copy, state)
    logger.warning("The driver was killed while Tune rewrote %s; put back the copy kept before.", state)
    return True


_KEPT_SAVE = ".last-complete-save-{}.whole"
"""The experiment directory's copy of a session's last complete save (not ``*.json``/``*.pkl``:
Tune copies those into its staging folder on restore)."""


class KeepLastCompleteSave(Callback):
    """Keeps a whole copy of the state Tune last saved completely, in the experiment directory.

    Tune saves the trial table, then the searcher, then the callback states, into its staging
    folder in each step and calls ``on_step_end`` after; this callback then writes the session's
    files, as one file and atomically, to ``.last-complete-save-<session>.whole``, whenever they
    changed. A kill during Tune's next save leaves the staging folder and the experiment
    directory's copy truncated, or a trial table ahead of its searcher;
    :func:`repair_state_after_kill` then resumes from this copy, which lacks only the step being
    saved. Pass it to ``tune.RunConfig(callbacks=[KeepLastCompleteSave()])``; both folders are
    read from the trials (``Trial.local_experiment_path``, ``Trial.remote_experiment_path``), so
    a resume from a moved experiment directory keeps its copy there. The experiment directory
    must be local (or mounted).
    """

    def __init__(self) -> None:
        self._kept: dict[str, bytes] = {}

    def __getstate__(self) -> dict[str, Any]:  # pickled into tuner.pkl: not the copy itself
        return {**self.__dict__, "_kept": {}}

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if not trials:  # Tune has saved nothing of this session yet
            return
        staging, experiment_dir = Path(trials[0].local_experiment_path), Path(trials[0].remote_experiment_path)
        sessions = _sessions(staging)
        if not sessions or not experiment_dir.is_dir():
            return
        session = sessions[-1]  # this driver's: sessions are named by their start time
        files = {name: (staging / name).read_bytes() for name in _session_files(session) if (staging / name).is_file()}
        if files == self._kept:
            return
        _write_atomically(experiment_dir / _KEPT_SAVE.format(session), pickle.dumps(files))
        self._kept = files


def _kept_save(experiment_dir: Path, session: str) -> dict[str, bytes] | None:
    """The session's files as :class:`KeepLastCompleteSave` kept them, or ``None``."""
    path = experiment_dir / _KEPT_SAVE.format(session)
    try:
        return pickle.loads(path.read_bytes())
    except Exception:  # none kept (an older run, or a storage path that is not local)
        return None


def _kept_sessions(experiment_dir: Path) -> list[str]:
    return _sessions_named(experiment_dir, _KEPT_SAVE)


def repair_state_after_kill(experiment_dir: Path, temp_dir: str | None = None) -> str:
    """Bring the experiment directory's state files up to the killed driver's last complete save.

    Tune writes its state (trial table, search-generator state, searcher state, callback states
    such as the scheduler's rungs) into the driver's staging folder at every step, under names
    that carry the session (each resume starts a new one, and first copies the older sessions'
    files into its own staging folder), then copies the folder to the experiment directory in
    the background, skipping a copy while the last one still runs. A kill can therefore leave
    the experiment directory's copy

    - without the killed session's files at all (killed before Tune's first copy of them): Tune
      would resume from the session before, and trials since then would start again;
    - truncated or empty (killed during the copy): Tune would fail to restore and start over;
    - whole but a step or more behind (killed before the copy): a trial whose newest checkpoint
      is missing from that copy restarts from an older one, or from scratch.

    For the newest session, the first of these is taken:

    1. the killed driver's staging copy, when its last save was complete: every file whole, and
       the searcher and callback files at least as new as the trial table (Tune writes the table
       first; a table ahead of its searcher could have a configuration suggested again);
    2. the copy of the last complete save that :class:`KeepLastCompleteSave` kept (the kill cut
       a save: only the step being saved is lost);
    3. the experiment directory's copy, when whole;
    4. the newest whole staging copy: the killed driver's, even with its table ahead of its
       searcher, or an earlier driver's (it holds the session's files as that driver found
       them when it started).

    Without any, truncated files are set aside (suffix ``.truncated``) and Tune resumes from the
    session before, whose files are whole; so it does when the killed driver's first save of
    its session was cut and nothing of it was kept.

    Returns:
        ``"whole"`` (nothing to mend), ``"from staging"``, ``"from kept copy"`` or ``"set aside"``.
    """
    copies = _staging_copies(experiment_dir, Path(temp_dir or tempfile.gettempdir()))
    synced = _sessions(experiment_dir)
    candidates = set(synced) | set(_kept_sessions(experiment_dir)) | set(_sessions(copies[0]) if copies else ())
    for session in sorted(candidates, reverse=True):
        names = _session_files(session)
        newest = copies[0] if copies and (copies[0] / names[0]).is_file() else None
        if newest is not None and _all_whole(newest, names) and _written_in_order(newest, names):
            if _same_files(newest, experiment_dir, names):
                return "whole"
            _take(newest, experiment_dir, names)
            logger.warning(
                "The driver was killed before Tune copied its last save of %s; took it from %s.", names[0], newest
            )
            return "from staging"
        kept = _kept_save(experiment_dir, session)
        if kept is not None:
            if all(_content(experiment_dir / name) == kept.get(name) for name in names):
                return "whole"
            for name in names:
                if name in kept:
                    _write_atomically(experiment_dir / name, kept[name])
            logger.warning(
                "The driver was killed while Tune saved %s; took the copy of its last complete save, "
                "kept in %s (only the step being saved runs again).", names[0], experiment_dir / _KEPT_SAVE.format(session),
            )
            return "from kept copy"
        if session not in synced:
            logger.warning(
                "The driver was killed while Tune first wrote %s; resuming from the session before it "
                "(trials of the killed session run again from their checkpoints).", names[0],
            )
            continue
        if _all_whole(experiment_dir, names):
            if newest is not None:
                logger.warning(
                    "The driver was killed while Tune wrote %s into %s; resuming from the experiment "
                    "directory's copy, which may be a step behind.", names[0], newest,
                )
            return "whole"
        # Killed while Tune wrote both copies: a whole staging copy, the newest first (even with
        # its table ahead of its searcher: better than no state of this session at all).
        whole = next((copy for copy in copies if (copy / names[0]).is_file() and _all_whole(copy, names)), None)
        if whole is not None:
            _take(whole, experiment_dir, names)
            logger.warning(
                "The driver was killed while Tune wrote %s and its staging copy; took the last whole copy, "
                "from %s; trials since then run again from their checkpoints.", names[0], whole,
            )
            return "from staging"
        for name in names:
            path = experiment_dir / name
            if path.exists():
                path.rename(path.with_name(name + ".truncated"))
        logger.warning(
            "The driver was killed while Tune wrote %s and no whole copy is left; resuming from the session "
            "before it (trials of the killed session since that state run again).", names[0],
        )
        return "set aside"
    return "whole"


def _content(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _sessions(folder: Path) -> list[str]:
    """The sessions whose trial table is in ``folder``, oldest first (their names are times)."""
    return _sessions_named(folder, _SESSION_STATE_FILES[0])


def _sessions_named(folder: Path, template: str) -> list[str]:
    """The sessions of the files in ``folder`` named by ``template``, oldest first."""
    prefix, suffix = template.split("{}")
    return sorted(path.name[len(prefix):-len(suffix)] for path in folder.glob(template.format("*")))


def session_tables(experiment_dir: Path) -> list[Path]:
    """The trial tables of the experiment's sessions, oldest first."""
    return [experiment_dir / _session_files(session)[0] for session in _sessions(experiment_dir)]


def whole_table(path: Path) -> bool:
    """Whether a session's trial table parses (a kill during Tune's write truncates it)."""
    return _all_whole(path.parent, [path.name])


def _session_files(session: str) -> list[str]:
    return [template.format(session) for template in _SESSION_STATE_FILES]


def _take(staging: Path, experiment_dir: Path, names: list[str]) -> None:
    for name in names:
        if (staging / name).is_file():
            _copy_atomically(staging / name, experiment_dir / name)


def _staging_copies(experiment_dir: Path, root: Path) -> list[Path]:
    """This experiment's driver staging folders, newest first.

    The same name may have staged another experiment: a folder is this one's when the trial
    folders staged in it are this experiment's, or, before any, when it holds a trial table
    this experiment directory holds too (a resumed driver copies them there first).
    """
    ours = set(_sessions(experiment_dir)) if experiment_dir.is_dir() else set()
    copies = []
    for staging in sorted(root.glob(_STAGING_GLOB.format(name=experiment_dir.name)), reverse=True):
        trial_dirs = [path.name for path in staging.iterdir() if path.is_dir()]
        if trial_dirs:
            if any((experiment_dir / name).is_dir() for name in trial_dirs):
                copies.append(staging)
        elif ours & set(_sessions(staging)):
            copies.append(staging)
    return copies


def _written_in_order(folder: Path, names: list[str]) -> bool:
    """Whether every other session file is at least as new as the trial table (one complete save)."""
    table = (folder / names[0]).stat().st_mtime_ns
    return all((folder / name).stat().st_mtime_ns >= table for name in names[1:] if (folder / name).is_file())


def _same_files(first: Path, second: Path, names: list[str]) -> bool:
    return all(_content(first / name) == _content(second / name) for name in names)


def _all_whole(folder: Path, names: list[str]) -> bool:
    """Whether the trial table parses and the other files of the session, where present, load."""
    for index, name in enumerate(names):
        path = folder / name
        if not path.is_file():
            if index == 0:
                return False
            continue
        data = path.read_bytes()
        try:
            json.loads(data)
        except ValueError:
            if index == 0:
                return False
            try:  # Tune pickles the search-generator state; searchers save JSON or pickle
                pickle.loads(data)
            except Exception:
                return False
    return True


