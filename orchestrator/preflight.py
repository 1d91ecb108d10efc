"""The checks of an experiment that need more than its spec, run before Ray starts.

An :class:`~orchestrator.spec.Experiment` checks at construction everything that depends on the
spec alone and is cheap (no Ray, no Ax). :func:`check_before_ray` checks the rest, and
:func:`orchestrator.run.run` calls it first, so every bad input fails in seconds with a
:class:`~orchestrator.spec.SpecError` naming the field and the fix, not after Ray's 10-15 s start
under a traceback. In order, cheapest first:

- ``storage_path``: a directory that can be written (not a file, not read-only);
- the experiment directory ``storage_path/name``: an earlier run there is continued only with
  ``resume``, replaced only with ``fresh``, a resumed spec must ask for what the run
  started with (:func:`check_resume_matches`), and the run must be where it started
  (:func:`record_location`);
- ``cluster.address`` (else ``RAY_ADDRESS``): something answers there, within seconds;
- ``resources``: against this machine, as a local ``ray.init()`` would see it, or against the
  nodes of the cluster when Ray is already connected (each bundle of a trial must fit on one
  node). With ``cluster.address`` or ``RAY_ADDRESS`` set and no connection yet, the cluster is
  known only once ``run`` connects, and :func:`check_cluster` runs then (resources, and
  ``storage_path`` reachable from every machine); ``cluster.autoscaling`` skips the comparison;
- ``trainable``: a class must be a ``ray.tune.Trainable``;
- ``scheduler``: built (no Ray session needed), and synchronous HyperBand must fit
  ``budget.max_concurrent``;
- ``method_options``: the searcher is built with them (no Ray session needed). Its constructor
  is the one authority on its option names and values, and it reads the files they name.

The last two import Ray Tune and Ax (seconds); ``run`` imports them next anyway, so a good
experiment pays one extra searcher construction. ``budget.max_concurrent`` above
``budget.num_trials`` is not an error: Tune never runs more trials than it has.

Example:
    >>> from orchestrator.spec import Experiment, Objective
    >>> experiment = Experiment(
    ...     name="toy",
    ...     trainable=lambda config: None,
    ...     search_space={"x": {"type": "uniform", "low": 0, "high": 1}},
    ...     objectives=[Objective("loss", "min")],
    ...     method="random",
    ...     method_options={"max_trial": 5},
    ...     storage_path="runs",
    ... )
    >>> check_before_ray(experiment, resume=False, fresh=False)
    Traceback (most recent call last):
    ...
    orchestrator._validation.SpecError: method_options.max_trial: got 5, ... (did you mean 'max_trials'?); ...
"""

from __future__ import annotations

import inspect
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cluster.connect import ClusterError, check_address_answers, check_storage_shared, cluster_address, is_remote_uri
from cluster.resources import (
    InsufficientResourcesError,
    ResourcesError,
    check_machine_can_place,
    check_nodes_can_place,
    node_resources,
)
from orchestrator._validation import SpecError, suggest
from orchestrator.spec import SPEC_FILENAME, Experiment, load_experiment

__all__ = [
    "RESUMABLE_CHANGES",
    "check_before_ray",
    "check_cluster",
    "check_resources",
    "check_resume_matches",
    "holds_run",
    "record_location",
    "resources_error",
]

LOCATION_FILENAME = ".started_in"
"""Written into a new experiment directory: its absolute path when the run started."""

RESUMABLE_CHANGES = (
    "storage_path",
    "budget.trial_timeout_s",
    "cluster.address",
    "cluster.autoscaling",
    "cluster.shared_storage",
)
"""Fields a resumed run may change. ``storage_path`` only locates the run (``./results`` and
its absolute path are the same run; a run moved from where it started is refused, see
:func:`record_location`); ``budget.trial_timeout_s`` is enforced by the wrapper
around the trainable, which a resume builds anew from the current spec; ``cluster.address``,
``autoscaling`` and ``shared_storage`` say where this session runs and what to check before it
(a run may resume on another cluster). ``Tuner.restore`` keeps
everything else as the run started: ``num_samples`` (``budget.num_trials``), the concurrency
limit, the time budget, the searcher with its state, the scheduler, and the resources of the
trials it restores, so a change there would apply to part of the run or to none of it."""

_UNEXPECTED_KEYWORD = re.compile(r"(?P<callee>[\w.]+)\(\) got an unexpected keyword argument '(?P<name>\w+)'")
_REPEATED_KEYWORD = re.compile(r"got multiple values for keyword argument '(?P<name>\w+)'")


def check_before_ray(experiment: Experiment, *, resume: bool, fresh: bool) -> None:
    """Raise :class:`SpecError` for anything that would fail once Ray has started.

    Args:
        experiment: a validated experiment.
        resume: the caller continues an earlier run in ``storage_path/name``.
        fresh: the caller moves an earlier run there aside and starts anew.

    Raises:
        SpecError: naming the field (``storage_path``, ``name``, ``budget.num_trials``,
            ``resources.gpu``, ``method_options.<option>``, ...), the bad value and the fix.
    """
    if resume and fresh:
        raise SpecError(
            "got True with fresh=True; choose one: resume (--resume) continues the earlier run, "
            "fresh (--fresh) moves it aside and starts anew.",
            "resume",
        )
    _check_storage(experiment)
    _check_earlier_run(experiment, resume=resume, fresh=fresh)
    _check_address(experiment)
    check_resources(experiment)
    _check_trainable_class(experiment)
    _check_scheduler(experiment)
    _check_searcher(experiment)


# ----------------------------------------------------------------- files
def _check_storage(experiment: Experiment) -> None:
    if is_remote_uri(experiment.storage_path):
        raise SpecError(
            f"got {experiment.storage_path!r}; the orchestrator keeps its tables, plots and trial records "
            "in a directory, so give a path: on a cluster of several machines, mount the bucket on every "
            "node (s3fs, gcsfuse) or use NFS, and set cluster.shared_storage: true.",
            "storage_path",
        )
    target = experiment.storage_dir / experiment.name
    nearest = next(path for path in (target, *target.parents) if path.exists())
    if not nearest.is_dir():
        raise SpecError(
            f"got {experiment.storage_path!r}, but {nearest} is a file; remove it or choose another "
            "storage_path.",
            "storage_path",
        )
    try:  # as root, os.access says yes to everything; a read-only file system still refuses
        with tempfile.TemporaryFile(dir=nearest):
            pass
    except OSError as error:
        raise SpecError(
            f"got {experiment.storage_path!r}, but {nearest} cannot be written "
            f"({error.strerror or error}); choose a storage_path you can write to, e.g. ./results.",
            "storage_path",
        ) from None


def holds_run(experiment_dir: str | os.PathLike[str]) -> bool:
    """Whether ``experiment_dir`` holds a run: the spec it saved, or Tune's state to restore from
    (``tune.Tuner.can_restore``, which reads the directory and starts nothing).

    Example:
        >>> holds_run("no/such/directory")
        False
    """
    directory = Path(experiment_dir)
    if not directory.is_dir():
        return False
    if (directory / SPEC_FILENAME).is_file():
        return True
    from ray import tune

    return tune.Tuner.can_restore(str(directory))


def _check_earlier_run(experiment: Experiment, *, resume: bool, fresh: bool) -> None:
    experiment_dir = experiment.storage_dir / experiment.name
    if fresh or not holds_run(experiment_dir):
        return
    if not resume:
        raise SpecError(
            f"got {experiment.name!r}, but {experiment_dir} already holds a run of that name; "
            "continue it with --resume (resume=True), move it aside and start anew with --fresh "
            "(fresh=True), or choose a new name.",
            "name",
        )
    saved = experiment_dir / SPEC_FILENAME
    if saved.is_file():  # absent when the spec had no YAML form (a lambda trainable)
        check_resume_matches(experiment, load_experiment(saved), experiment_dir)
    _check_not_moved(experiment, experiment_dir)


def record_location(experiment_dir: Path) -> None:
    """Note where a new run's directory is, so that a resume can tell that it was moved."""
    (experiment_dir / LOCATION_FILENAME).write_text(str(Path(experiment_dir).resolve()) + "\n")


def _check_not_moved(experiment: Experiment, experiment_dir: Path) -> None:
    """Refuse to resume a run whose directory was moved (or is reached by another path).

    Ray Tune 2.60 restores the trials it had created at the new place, but its search generator
    keeps the experiment as pickled when the run started, old storage path included, so the
    trials it creates after the resume are set up under the old path: they fail ("Unable to set
    up cluster storage"), or write beside the run where the old path still exists. Seen with
    ``orchestrator run --resume`` after moving a killed run's directory.
    """
    recorded = experiment_dir / LOCATION_FILENAME
    if not recorded.is_file():  # a run started before this record was kept
        return
    started_in = Path(recorded.read_text().strip())
    if started_in.resolve() == experiment_dir.resolve():  # the same directory, a link included
        return
    raise SpecError(
        f"got {experiment.storage_path!r}, but the run in {experiment_dir} was started in {started_in} "
        "and has been moved since; Ray Tune resumes the trials it had started from the new place but sets "
        "up the ones it has yet to start under the old path, where they would fail or write apart from the "
        f"run. Move the directory back to {started_in}, or link the old path to it "
        f"(ln -s {experiment_dir} {started_in}), and resume again. `orchestrator report {experiment_dir}` "
        "works where it is.",
        "storage_path",
    )


def check_resume_matches(experiment: Experiment, started: Experiment, experiment_dir: Path) -> None:
    """Raise unless resuming ``experiment`` asks for what the run ``started`` with.

    Only the fields in :data:`RESUMABLE_CHANGES` may differ: a resume either applies a change
    to the whole run or refuses it, never to half of it.

    Raises:
        SpecError: naming the first changed field, the old and the new value, and the fix.
    """
    old, new = _leaves(started.to_dict()), _leaves(experiment.to_dict())
    changed = [
        path
        for path in dict.fromkeys([*new, *old])
        if path not in RESUMABLE_CHANGES and old.get(path, "unset") != new.get(path, "unset")
    ]
    if not changed:
        return
    first, others = changed[0], changed[1:]
    also = f" Also changed: {', '.join(others)}." if others else ""
    raise SpecError(
        f"got {new.get(first, 'unset')!r}, but the run in {experiment_dir} started with "
        f"{old.get(first, 'unset')!r}, and a resumed run keeps the settings it started with "
        f"(Tuner.restore cannot change them); undo the change to resume (the run's spec is "
        f"{experiment_dir / SPEC_FILENAME}), or start anew with --fresh (fresh=True) or a new "
        f"name.{also}",
        first,
    )


def _leaves(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"budget": {"num_trials": 3}}`` as ``{"budget.num_trials": 3}``; lists stay whole."""
    leaves: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            leaves.update(_leaves(value, f"{prefix}{key}."))
        else:
            leaves[f"{prefix}{key}"] = value
    return leaves


# ----------------------------------------------------------------- machine and cluster
def _check_address(experiment: Experiment) -> None:
    """Something answers at the cluster's address (``cluster.address``, else ``RAY_ADDRESS``)."""
    ray = sys.modules.get("ray")
    address = cluster_address(experiment.cluster.address)
    if address is None or (ray is not None and ray.is_initialized()):
        return
    try:
        check_address_answers(address)
    except ClusterError as error:
        field = "cluster.address" if experiment.cluster.address else "RAY_ADDRESS"
        raise SpecError(error.message, field) from None


def check_resources(experiment: Experiment) -> None:
    """Raise unless one trial's ``resources`` fit where the trials will run.

    With Ray connected: the cluster's nodes (``ray.nodes()``), each bundle of a trial on one
    node, unless ``cluster.autoscaling`` says nodes come on demand. Without a connection and
    without an address (``cluster.address``, ``RAY_ADDRESS``): this machine, as the local
    ``ray.init()`` of ``run`` will see it. With an address and no connection yet: nothing to
    compare with, so :func:`check_cluster` checks once connected.

    Raises:
        SpecError: for ``resources.cpu``, ``resources.gpu`` or ``resources.bundles[i]...``, with
            what is there and the fix.
    """
    request = experiment.resources.trial_resources()
    ray = sys.modules.get("ray")  # not imported: no session to ask
    try:
        if ray is not None and ray.is_initialized():
            if not experiment.cluster.autoscaling:
                check_nodes_can_place(request, node_resources())
        elif cluster_address(experiment.cluster.address) in (None, "local"):
            check_machine_can_place(request)
    except InsufficientResourcesError as error:
        if ray is not None and ray.is_initialized():
            raise resources_error(error, " If an autoscaler adds such nodes, set cluster.autoscaling: true.") from None
        raise resources_error(error) from None
    except ResourcesError as error:
        raise resources_error(error) from None


def check_cluster(experiment: Experiment) -> None:
    """Check the connected Ray cluster: :func:`check_resources`, and ``storage_path`` reachable.

    A local ``storage_path`` on a cluster of several machines is refused unless
    ``cluster.shared_storage`` declares it mounted on every node.

    Raises:
        SpecError: for ``resources.*`` or ``storage_path``.
    """
    check_resources(experiment)
    try:
        check_storage_shared(experiment.storage_path, node_resources(), shared=experiment.cluster.shared_storage)
    except ClusterError as error:
        raise SpecError(error.message, error.field) from None


def resources_error(error: ResourcesError, more: str = "") -> SpecError:
    """A :mod:`cluster.resources` error as the spec's: its field under ``resources``, ``more`` added.

    Example:
        >>> str(resources_error(ResourcesError("got 3 per trial, but ...; lower it.", "cpu")))
        'resources.cpu: got 3 per trial, but ...; lower it.'
    """
    return SpecError(error.message + more, f"resources.{error.field}" if error.field else "resources")


# ----------------------------------------------------------------- Tune and the searchers
def _check_trainable_class(experiment: Experiment) -> None:
    trainable = experiment.resolve_trainable()
    if not inspect.isclass(trainable):
        return  # functions: Experiment checked their signature
    from ray.tune import Trainable

    if not issubclass(trainable, Trainable):
        raise SpecError(
            f"got class {trainable.__qualname__}, which is not a ray.tune.Trainable; point it at a "
            "function `def train(config): ...` or at a subclass of ray.tune.Trainable.",
            "trainable",
        )


def _check_scheduler(experiment: Experiment) -> None:
    from orchestrator.methods import get_method

    config = experiment.scheduler_config()
    if config is None:
        return
    needed = getattr(config.build(), "min_concurrent_trials", 1)
    allowed = experiment.budget.max_concurrent
    if allowed >= needed:
        return
    settings = ", ".join(f"{key}={value}" for key, value in {"max_t": config.max_t, **config.options}.items())
    instead = "method 'asha'" if get_method(experiment.method).scheduler else "scheduler.type 'asha'"
    raise SpecError(
        f"got {allowed}, but scheduler {config.type!r} with {settings} pauses up to {needed} trials "
        "at a milestone until all of them reach it, so with fewer running at once the experiment "
        f"would stall; set budget.max_concurrent >= {needed}, lower scheduler.max_t or raise "
        f"scheduler.reduction_factor, or use {instead} (asynchronous, never waits).",
        "budget.max_concurrent",
    )


def _check_searcher(experiment: Experiment) -> None:
    from orchestrator.methods import build_searcher

    try:
        build_searcher(experiment.method, experiment.search_problem(), **experiment.method_options)
    except (TypeError, ValueError, KeyError, ImportError, OSError) as error:
        raise _searcher_error(experiment, error) from error


def _searcher_error(experiment: Experiment, error: Exception) -> SpecError:
    """The error of building the searcher, attributed to the option that caused it."""
    method, options = experiment.method, experiment.method_options
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    unexpected = _UNEXPECTED_KEYWORD.search(text)
    if unexpected and unexpected["name"] in options:
        name = unexpected["name"]
        accepted = _keyword_parameters(error, unexpected["callee"].split(".")[0])
        return SpecError(
            f"got {options[name]!r}, but method {method!r} has no option {name!r}"
            f"{suggest(name, accepted)}; fix its name or drop it (the options are the keyword "
            f"arguments of {unexpected['callee'].split('.')[0]}).",
            f"method_options.{name}",
        )
    repeated = _REPEATED_KEYWORD.search(text)
    if repeated and repeated["name"] in options:
        name = repeated["name"]
        return SpecError(
            f"got {options[name]!r}, but the experiment sets {name!r} itself; drop it from "
            "method_options and use the experiment's own field (seed, budget.max_concurrent, ...).",
            f"method_options.{name}",
        )
    if isinstance(error, OSError) and error.filename is not None:
        named = [key for key, value in options.items() if _same_path(value, error.filename)]
        return SpecError(
            f"got {os.fspath(error.filename)!r}, which cannot be read ({error.strerror or error}); "
            "give the path of an existing CSV file (a relative path resolves against the current "
            "directory).",
            f"method_options.{named[0]}" if named else "method_options",
        )
    named = [key for key in options if re.search(rf"\b{re.escape(key)}\b", text)]
    if named:
        return SpecError(
            f"got {options[named[0]]!r}, which method {method!r} refuses: {text.rstrip('.')}; fix or drop it.",
            f"method_options.{named[0]}",
        )
    field = "method_options" if options else "method"
    return SpecError(
        f"got {method!r}, which cannot be built for this experiment: {type(error).__name__}: "
        f"{text.rstrip('.')}; fix the experiment or choose another method.",
        field,
    )


def _same_path(value: Any, filename: Any) -> bool:
    if not isinstance(value, (str, os.PathLike)):
        return False
    return os.path.abspath(os.fspath(value)) == os.path.abspath(os.fspath(filename))


def _keyword_parameters(error: BaseException, class_name: str) -> list[str]:
    """The keyword parameters of the class that refused an option, found where it was called.

    The call site is the innermost frame of the traceback (the method's builder), which holds
    the class under its own name; ``[]`` when it is not there.
    """
    traceback = error.__traceback__
    while traceback is not None and traceback.tb_next is not None:
        traceback = traceback.tb_next
    if traceback is None:
        return []
    frame = traceback.tb_frame
    target = frame.f_locals.get(class_name, frame.f_globals.get(class_name))
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return []
    keyword_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [parameter.name for parameter in parameters if parameter.kind in keyword_kinds]
