"""Tests for orchestrator/preflight.py: every input that used to fail after Ray started fails here,
naming the field and the fix, while ``ray.init`` is patched to fail the test if anything calls it."""

from __future__ import annotations

import dataclasses
import time
import types
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from orchestrator import methods  # noqa: E402
from orchestrator.preflight import (  # noqa: E402
    RESUMABLE_CHANGES,
    check_before_ray,
    check_resources,
    holds_run,
    record_location,
)
from orchestrator.spec import Budget, Experiment, SpecError, save_experiment  # noqa: E402


def toy_trainable(config: dict[str, Any]) -> None:
    """A stand-in trainable; nothing here runs it."""


class NotATrainable:
    """A class Tune cannot run: not a ``ray.tune.Trainable``."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config


class RayStarted(BaseException):
    """Raised by the patched ``ray.init``; a BaseException, so no ``except Exception`` hides it."""


@pytest.fixture(autouse=True)
def no_ray(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Ray may not start, the machine is a local one (no RAY_ADDRESS), and files land in tmp_path."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RayStarted("check_before_ray started Ray")

    initialized = ray.is_initialized  # before a test patches it
    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.chdir(tmp_path)
    yield
    assert not initialized()


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The real method catalogue, restored after the test, so a test may register a method."""
    monkeypatch.setattr(methods, "_REGISTRY", dict(methods._REGISTRY))
    return methods


def make(**overrides: Any) -> Experiment:
    spec: dict[str, Any] = {
        "name": "toy",
        "trainable": toy_trainable,
        "search_space": {"x": {"type": "uniform", "low": 0, "high": 1}, "epochs": 2},
        "objectives": [{"name": "loss", "mode": "min"}, {"name": "size", "mode": "min"}],
        "method": "random",
        "storage_path": "runs",
    }
    spec.update(overrides)
    return Experiment.from_dict(spec)


def refusal(experiment: Experiment, *, resume: bool = False, fresh: bool = False) -> SpecError:
    with pytest.raises(SpecError) as raised:
        check_before_ray(experiment, resume=resume, fresh=fresh)
    return raised.value


def assert_mentions(message: str, *fragments: str) -> None:
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_a_good_experiment_passes_without_starting_ray() -> None:
    experiment = make(scheduler={"type": "asha", "max_t": 4})
    assert check_before_ray(experiment, resume=False, fresh=False) is None


# --------------------------------------------------------------------------- storage_path
def test_storage_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "occupied").write_text("not a directory")
    for storage_path in ("occupied", "occupied/below"):
        error = refusal(make(storage_path=storage_path))
        assert error.field == "storage_path"
        assert_mentions(str(error), f"got {storage_path!r}", "occupied is a file", "choose another storage_path")


def test_storage_path_that_cannot_be_written_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # As root every directory is writable, so the file system's refusal is simulated here.
    def read_only(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("orchestrator.preflight.tempfile.TemporaryFile", read_only)
    error = refusal(make(storage_path="deep/new/dir"))
    assert error.field == "storage_path"
    assert_mentions(str(error), "cannot be written (Permission denied)", "storage_path you can write to")


def test_the_writability_probe_leaves_nothing_behind(tmp_path: Path) -> None:
    check_before_ray(make(storage_path="runs"), resume=False, fresh=False)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- earlier runs
def saved_run(experiment: Experiment) -> Path:
    directory = experiment.storage_dir / experiment.name
    directory.mkdir(parents=True)
    save_experiment(dataclasses.replace(experiment, trainable=f"{__name__}:toy_trainable"), directory / "experiment.yaml")
    return directory


def test_running_into_an_earlier_run_is_refused_naming_resume_fresh_and_name() -> None:
    experiment = make()
    directory = saved_run(experiment)
    error = refusal(experiment)
    assert error.field == "name"
    assert_mentions(str(error), f"{directory} already holds a run", "--resume", "--fresh", "new name")


def test_tunes_own_state_alone_also_marks_an_earlier_run() -> None:
    experiment = make()
    directory = experiment.storage_dir / experiment.name
    directory.mkdir(parents=True)
    (directory / "notes.txt").write_text("not a run")
    assert not holds_run(directory)
    (directory / "tuner.pkl").write_bytes(b"")  # what tune.Tuner.can_restore looks for (ray 2.60)
    assert holds_run(directory)
    assert refusal(experiment).field == "name"


def test_fresh_or_resume_go_ahead_with_an_earlier_run() -> None:
    experiment = make()
    saved_run(experiment)
    check_before_ray(experiment, resume=False, fresh=True)
    check_before_ray(experiment, resume=True, fresh=False)


def test_resume_and_fresh_together_are_refused() -> None:
    assert_mentions(str(refusal(make(), resume=True, fresh=True)), "resume: got True with fresh=True", "choose one")


def test_resume_without_an_earlier_run_goes_ahead() -> None:
    check_before_ray(make(), resume=True, fresh=False)


@pytest.mark.parametrize(
    ("change", "field", "old", "new"),
    [
        ({"budget": Budget(num_trials=30)}, "budget.num_trials", "20", "30"),
        ({"budget": Budget(max_concurrent=4)}, "budget.max_concurrent", "2", "4"),
        ({"budget": Budget(time_budget_s=60)}, "budget.time_budget_s", "None", "60"),
        ({"seed": 5}, "seed", "0", "5"),
        ({"method": "tpe"}, "method", "'random'", "'tpe'"),
        ({"resources": {"cpu": 2}}, "resources.cpu", "1", "2"),
        ({"search_space": {"x": {"type": "uniform", "low": 0, "high": 2}, "epochs": 2}}, "search_space.x.high", "1", "2"),
    ],
)
def test_resume_with_a_change_tune_cannot_apply_is_refused(
    change: dict[str, Any], field: str, old: str, new: str
) -> None:
    started = make()
    directory = saved_run(started)
    error = refusal(dataclasses.replace(started, **change), resume=True)
    assert error.field == field
    assert_mentions(
        str(error), f"{field}: got {new}, but the run in {directory} started with {old}", "--fresh", "experiment.yaml"
    )


def test_resume_names_every_changed_field() -> None:
    started = make()
    saved_run(started)
    error = refusal(dataclasses.replace(started, seed=5, budget=Budget(num_trials=3)), resume=True)
    assert error.field == "budget.num_trials" and "Also changed: seed." in str(error)


def test_resume_applies_the_changes_a_restore_honours(tmp_path: Path) -> None:
    assert set(RESUMABLE_CHANGES) == {
        "storage_path", "budget.trial_timeout_s", "cluster.address", "cluster.autoscaling", "cluster.shared_storage"
    }
    started = make()
    saved_run(started)
    moved = dataclasses.replace(
        started, storage_path=str(tmp_path / "runs"), budget=Budget(trial_timeout_s=30),
        cluster={"autoscaling": True, "shared_storage": True},
    )
    check_before_ray(moved, resume=True, fresh=False)


def test_a_moved_run_is_refused_until_its_old_path_leads_to_it(tmp_path: Path) -> None:
    """Seen: resumed after a move, the trials Tune created afterwards were set up under the old
    path and failed; the endings went there too, so finished trials read as interrupted."""
    started = make()
    record_location(saved_run(started))
    (tmp_path / "runs").rename(tmp_path / "moved")
    moved = dataclasses.replace(started, storage_path="moved")
    error = refusal(moved, resume=True)
    assert error.field == "storage_path"
    assert_mentions(
        str(error), f"started in {tmp_path / 'runs' / 'toy'}", "has been moved",
        f"ln -s {tmp_path / 'moved' / 'toy'} {tmp_path / 'runs' / 'toy'}", "orchestrator report",
    )
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "toy").symlink_to(tmp_path / "moved" / "toy")
    check_before_ray(moved, resume=True, fresh=False)
    check_before_ray(started, resume=True, fresh=False)  # through the link: the same run


# --------------------------------------------------------------------------- resources
@pytest.fixture
def two_cpus_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr("cluster.resources.os.cpu_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.mark.parametrize(
    ("resources", "field", "fragments"),
    [
        ({"cpu": 3}, "resources.cpu", ["got 3 per trial", "this machine", "2 CPU and 0 GPU", "at most 2", "RAY_ADDRESS"]),
        ({"gpu": 1}, "resources.gpu", ["got 1 per trial", "this machine", "at most 0", "RAY_ADDRESS"]),
    ],
)
def test_resources_this_machine_lacks_are_refused(
    two_cpus_no_gpu: None, resources: dict[str, Any], field: str, fragments: list[str]
) -> None:
    error = refusal(make(resources=resources))
    assert error.field == field
    assert_mentions(str(error), *fragments)


def test_with_ray_address_the_cluster_is_checked_once_connected(
    two_cpus_no_gpu: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    probed: list[str] = []
    monkeypatch.setattr("orchestrator.preflight.check_address_answers", probed.append)  # as if the head answered
    check_before_ray(make(resources={"cpu": 64}), resume=False, fresh=False)
    assert probed == ["ray://head:10001"]


def test_an_address_where_nothing_answers_is_refused_before_ray_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    error = refusal(make())
    assert error.field == "RAY_ADDRESS"
    assert_mentions(str(error), "got '127.0.0.1:1', but nothing answers at 127.0.0.1 port 1", "unset it")
    error = refusal(make(cluster={"address": "127.0.0.1:1"}))
    assert error.field == "cluster.address"


def test_a_connected_cluster_is_checked_instead_of_this_machine(
    two_cpus_no_gpu: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "nodes", lambda: [{"NodeID": "a", "Alive": True, "Resources": {"CPU": 8.0}}])
    check_resources(make(resources={"cpu": 8}))
    with pytest.raises(SpecError, match=r"^resources\.cpu: got 16 per trial, but the cluster has 8 CPU"):
        check_resources(make(resources={"cpu": 16}))


# --------------------------------------------------------------------------- trainable, scheduler
def test_a_class_that_is_not_a_tune_trainable_is_refused() -> None:
    error = refusal(make(trainable=NotATrainable))
    assert error.field == "trainable"
    assert_mentions(str(error), "class NotATrainable", "not a ray.tune.Trainable", "def train(config)")


def test_a_tune_trainable_class_passes() -> None:
    class Counting(ray.tune.Trainable):
        def step(self) -> dict[str, float]:
            return {"loss": 0.0, "size": 1.0}

    check_before_ray(make(trainable=Counting), resume=False, fresh=False)


@pytest.mark.parametrize(
    ("spec", "instead"),
    [
        ({"method": "hyperband", "scheduler": {"max_t": 27}}, "method 'asha'"),
        ({"method": "random", "scheduler": {"type": "hyperband", "max_t": 27}}, "scheduler.type 'asha'"),
    ],
)
def test_hyperband_that_would_stall_under_the_concurrency_cap_is_refused(spec: dict[str, Any], instead: str) -> None:
    error = refusal(make(budget={"max_concurrent": 2}, **spec))
    assert error.field == "budget.max_concurrent"
    assert_mentions(
        str(error), "got 2", "'hyperband' with max_t=27, reduction_factor=3", "pauses up to 27 trials",
        "budget.max_concurrent >= 27", instead,
    )
    check_before_ray(make(budget={"max_concurrent": 27}, **spec), resume=False, fresh=False)


def test_max_concurrent_above_num_trials_is_not_an_error() -> None:
    check_before_ray(make(budget={"num_trials": 2, "max_concurrent": 8}), resume=False, fresh=False)


# --------------------------------------------------------------------------- method_options
@pytest.mark.parametrize(
    ("method", "options", "field", "fragments"),
    [
        ("random", {"max_trial": 5}, "method_options.max_trial",
         ["got 5", "method 'random' has no option 'max_trial'", "did you mean 'max_trials'", "RandomSearch"]),
        ("tpe", {"n_initial_point": 4}, "method_options.n_initial_point",
         ["method 'tpe' has no option 'n_initial_point'", "did you mean 'n_initial_points'", "HyperOptSearch"]),
        ("random", {"seed": 3}, "method_options.seed", ["the experiment sets 'seed' itself", "drop it"]),
        ("ax-mobo", {"method": "bogus"}, "method_options.method",
         ["got 'bogus'", "method 'ax-mobo' refuses", "'fast', 'quality', 'random_search'"]),
        ("pool-mobo", {"candidates": [{"w": 1}], "num_initial": 0}, "method_options.num_initial",
         ["got 0", "expected an integer >= 1"]),
        ("pool-mobo", {"candidates": "pool.csv"}, "method_options.candidates",
         ["got 'pool.csv'", "cannot be read (No such file or directory)", "existing CSV file"]),
        ("ax-mobo", {"warm_start": "earlier/results.csv"}, "method_options.warm_start",
         ["got 'earlier/results.csv'", "cannot be read"]),
    ],
)
def test_method_options_the_searcher_refuses_are_named(
    method: str, options: dict[str, Any], field: str, fragments: list[str]
) -> None:
    error = refusal(make(method=method, method_options=options))
    assert error.field == field
    assert_mentions(str(error), *fragments)


def test_a_searcher_that_fails_for_other_reasons_names_the_method(registry: types.ModuleType) -> None:
    def refuse(problem: Any, **options: Any) -> None:
        raise ValueError("this searcher needs two objectives at most.")

    registry.register_method(registry.Method("picky", "refuses every experiment", refuse))
    error = refusal(make(method="picky"))
    assert error.field == "method"
    assert_mentions(str(error), "got 'picky'", "ValueError: this searcher needs two objectives at most", "another method")


def test_cheap_mistakes_are_found_before_the_searcher_is_built(registry: types.ModuleType) -> None:
    built = []
    registry.register_method(registry.Method("counted", "counts builds", lambda problem, **options: built.append(1)))
    started = time.perf_counter()
    refusal(make(method="counted", storage_path="/dev/null"))
    assert built == [] and time.perf_counter() - started < 5


# --------------------------------------------------------------------------- cluster storage
def test_a_bucket_uri_as_storage_path_is_refused_with_the_mount_fix() -> None:
    error = refusal(make(storage_path="s3://bucket/runs"))
    assert error.field == "storage_path"
    assert_mentions(str(error), "got 's3://bucket/runs'", "mount the bucket on every node", "cluster.shared_storage: true")


def test_a_local_storage_path_on_several_machines_needs_shared_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.preflight import check_cluster

    machines = [
        {"NodeID": "a", "Alive": True, "NodeManagerAddress": "10.0.0.5", "Resources": {"CPU": 8.0}},
        {"NodeID": "b", "Alive": True, "NodeManagerAddress": "10.0.0.6", "Resources": {"CPU": 8.0}},
    ]
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "nodes", lambda: machines)
    with pytest.raises(SpecError, match=r"^storage_path: got 'runs', a path on this machine, but the cluster spans 2 machines"):
        check_cluster(make())
    check_cluster(make(cluster={"shared_storage": True}))
    machines[1]["NodeManagerAddress"] = "10.0.0.5"  # ray.cluster_utils.Cluster: nodes on one machine
    check_cluster(make())
