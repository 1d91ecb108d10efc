"""Tests for examples/cluster_submit.py, the script ``ray submit`` runs on the head node."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray")

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "cluster_submit.py"


def load_script():
    spec = importlib.util.spec_from_file_location("cluster_submit", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_spec(tmp_path: Path, **fields) -> Path:
    spec = {
        "name": "tiny",
        "trainable": "tests.cluster.cluster_trainable:train",
        "search_space": {"x": {"type": "uniform", "low": 0.1, "high": 1.0}},
        "objectives": [{"name": "score", "mode": "max"}],
        "method": "random",
        "storage_path": str(tmp_path / "results"),
        **fields,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_an_unreachable_cluster_is_one_error_line_within_seconds(tmp_path, capsys):
    import ray

    assert not ray.is_initialized()
    started = time.monotonic()
    status = load_script().main(["--spec", str(tiny_spec(tmp_path)), "--address", "127.0.0.1:1"])
    assert status == 2 and time.monotonic() - started < 20
    error = capsys.readouterr().err
    assert error.startswith("error: cluster.address: got '127.0.0.1:1', but nothing answers at 127.0.0.1 port 1")
    assert error.count("\n") == 1 and not ray.is_initialized()


def test_a_bad_spec_is_one_error_line(tmp_path, capsys):
    status = load_script().main(["--spec", str(tiny_spec(tmp_path, cluster={"max_failures": -5}))])
    assert status == 2
    assert "cluster.max_failures: got -5" in capsys.readouterr().err


def test_the_default_spec_is_the_cluster_example_in_the_mounted_checkout():
    assert load_script().DEFAULT_SPEC == Path("~/tune-orchestrator/examples/cluster_digits.yaml").expanduser()
    from orchestrator.spec import load_experiment

    experiment = load_experiment(SCRIPT.parent / "cluster_digits.yaml")
    assert (experiment.cluster.address, experiment.cluster.shared_storage) == ("auto", True)
    assert experiment.resources.gpu == 0.25 and experiment.storage_path.startswith("/mnt/shared/")
