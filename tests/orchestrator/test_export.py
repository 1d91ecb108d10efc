"""Tests for orchestrator.export: from a Pareto row to its checkpoint, exported and loaded.

The experiment directories are built by hand in the layout Ray 2.60 writes
(``<trainable>_<trial_id>_<n>_<params>_<date>/checkpoint_00000N/``, ``result.json`` lines with
``trial_id``), their checkpoints saved by the real ``report_epoch`` through the fake Tune
session; one test at the end runs a real Tune experiment.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from torch import nn

from orchestrator.export import (
    CHECKPOINTS_TO_KEEP,
    checkpoint_config,
    checkpoint_path,
    export_pareto,
    export_summary,
    find_checkpoint,
    load_checkpoint,
    print_export_summary,
)
from orchestrator.results import PARETO_FILENAME, pareto_front
from orchestrator.trainable import count_parameters, report_epoch, restore_from_checkpoint
from tests.orchestrator.fake_tune_session import FakeTuneSession


def constant_model(value: float) -> nn.Linear:
    model = nn.Linear(2, 1)
    for parameter in model.parameters():
        nn.init.constant_(parameter, value)
    return model


def make_trial(monkeypatch, experiment_dir: Path, trial_id: str, epochs: int = 2, dirname: str | None = None) -> Path:
    """A trial folder as Tune leaves it; epoch ``e``'s checkpoint holds weights all equal to ``e``."""
    folder = experiment_dir / (dirname or f"train_fn_{trial_id}_1_lr=0.1_2026-01-01_00-00-00")
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(json.dumps({"lr": 0.1}))
    lines = [json.dumps({"trial_id": trial_id, "training_iteration": e + 1}) for e in range(epochs)]
    (folder / "result.json").write_text("".join(line + "\n" for line in lines))
    FakeTuneSession(folder).install(monkeypatch)
    for epoch in range(epochs):
        report_epoch({"acc": 0.5}, model=constant_model(epoch), epoch=epoch)
    return folder


def write_front(experiment_dir: Path, rows: list[dict]) -> None:
    pd.DataFrame(rows).to_csv(experiment_dir / PARETO_FILENAME, index=False)


def row(trial_id: str, **extra) -> dict:
    return {
        "trial_id": trial_id, "status": "completed", "training_iteration": 2, "acc": 0.9, "cost": 3.0,
        "config/lr": 0.1, "config/net/width": 4, **extra,
    }


@pytest.fixture
def experiment(monkeypatch, tmp_path) -> Path:
    """Two Pareto trials: ``aaaa0001`` (checkpoint column filled) and ``bbbb0002`` (column empty)."""
    experiment_dir = tmp_path / "exp"
    first = make_trial(monkeypatch, experiment_dir, "aaaa0001", epochs=3)
    make_trial(monkeypatch, experiment_dir, "bbbb0002", epochs=2)
    write_front(experiment_dir, [
        row("aaaa0001", checkpoint=str(first / "checkpoint_000002"), training_iteration=3),
        row("bbbb0002", checkpoint="", acc=0.5, cost=1.0),
    ])
    return experiment_dir


def weight(state: dict) -> float:
    return float(state["model"]["weight"].flatten()[0])


# --- export_pareto ---------------------------------------------------------------------------------


def test_export_copies_each_trials_last_checkpoint_with_config_and_metrics(experiment):
    folder = export_pareto(experiment)
    assert folder == experiment / "pareto"
    assert sorted(p.name for p in folder.iterdir()) == ["aaaa0001", "bbbb0002", "summary.csv"]
    assert sorted(p.name for p in (folder / "aaaa0001").iterdir()) == ["checkpoint", "config.json", "metrics.json"]
    config = json.loads((folder / "aaaa0001" / "config.json").read_text())
    assert config == {"lr": 0.1, "net": {"width": 4}}
    metrics = json.loads((folder / "bbbb0002" / "metrics.json").read_text())
    assert metrics["acc"] == 0.5 and metrics["cost"] == 1.0 and metrics["trial_id"] == "bbbb0002"
    assert metrics["checkpoint"] is None and not any(key.startswith("config/") for key in metrics)
    # Last epoch of each trial: 3 epochs -> weights 2.0; 2 epochs (found without the column) -> 1.0.
    assert weight(load_checkpoint(folder, "aaaa0001")) == 2.0
    assert weight(load_checkpoint(folder, "bbbb0002")) == 1.0
    assert export_summary(folder)["warning"].tolist() == ["", ""]


def test_export_finds_checkpoints_when_the_column_is_stale_missing_or_the_folder_renamed(monkeypatch, tmp_path):
    experiment_dir = tmp_path / "exp"
    # Numeric-looking ids must stay strings; a custom dirname leaves the id out of the folder name.
    make_trial(monkeypatch, experiment_dir, "12345678", epochs=2)
    make_trial(monkeypatch, experiment_dir, "1e500000", epochs=3, dirname="custom_name")
    write_front(experiment_dir, [row("12345678", checkpoint="/moved/away/checkpoint_000001"), row("1e500000")])
    folder = export_pareto(experiment_dir)
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["12345678", "1e500000"]
    summary = export_summary(folder).set_index("trial_id")
    assert summary.loc["1e500000", "source"] == str(experiment_dir / "custom_name" / "checkpoint_000002")
    assert weight(load_checkpoint(folder, "1e500000")) == 2.0


def test_trial_without_checkpoint_gets_json_files_and_a_warning(monkeypatch, experiment):
    no_checkpoint = experiment / "train_fn_cccc0003_3_2026-01-01_00-00-00"
    no_checkpoint.mkdir()
    (no_checkpoint / "result.json").write_text(json.dumps({"trial_id": "cccc0003"}) + "\n")
    write_front(experiment, [row("cccc0003"), row("dddd0004")])  # dddd0004 has no folder at all
    folder = export_pareto(experiment)
    assert sorted(p.name for p in (folder / "cccc0003").iterdir()) == ["config.json", "metrics.json"]
    summary = export_summary(folder)
    assert summary["warning"].str.contains("no checkpoint found for trial").all()
    printed = io.StringIO()
    print_export_summary(folder, file=printed)
    lines = printed.getvalue().splitlines()
    assert lines[0] == f"Exported 2 Pareto trials to {folder}"
    assert "WARNING: no checkpoint found for trial cccc0003" in lines[1]


def test_reexport_replaces_the_previous_export_as_a_whole(experiment):
    folder = export_pareto(experiment)
    (folder / "aaaa0001" / "checkpoint" / "stale.txt").write_text("from an older export")
    write_front(experiment, [row("aaaa0001")])
    assert export_pareto(experiment) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["aaaa0001", "summary.csv"]
    assert not (folder / "aaaa0001" / "checkpoint" / "stale.txt").exists()
    assert not [p.name for p in experiment.iterdir() if p.name.startswith(".pareto")]  # no staging left


def test_export_to_another_directory_loads_from_there_and_from_its_pareto_folder(experiment, tmp_path):
    folder = export_pareto(experiment, tmp_path / "models")
    assert folder == tmp_path / "models" / "pareto" and not (experiment / "pareto").exists()
    assert find_checkpoint(tmp_path / "models", "aaaa0001") == folder / "aaaa0001" / "checkpoint"
    assert find_checkpoint(folder, "aaaa0001") == folder / "aaaa0001" / "checkpoint"


def test_export_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"experiment_dir: got .*no pareto_front\.csv; pass the"):
        export_pareto(tmp_path)
    pd.DataFrame({"acc": [1.0]}).to_csv(tmp_path / PARETO_FILENAME, index=False)
    with pytest.raises(ValueError, match=r"pareto_front\.csv: got columns \['acc'\]; it needs a trial_id"):
        export_pareto(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"folder: got .*no summary\.csv"):
        export_summary(tmp_path)


# --- find_checkpoint / load_checkpoint -------------------------------------------------------------


def test_load_checkpoint_from_the_experiment_directory_takes_the_newest(experiment):
    state = load_checkpoint(experiment, "aaaa0001")
    assert state["epoch"] == 2 and weight(state) == 2.0 and state["optimizer"] is None
    assert find_checkpoint(experiment, "bbbb0002").name == "checkpoint_000001"


def test_load_checkpoint_with_an_unknown_trial_names_the_available_ones(experiment):
    with pytest.raises(ValueError, match=r"trial_id: got 'nope', .*use one of \['aaaa0001', 'bbbb0002'\]"):
        load_checkpoint(experiment, "nope")
    with pytest.raises(ValueError, match=r"use one of \[\]"):
        load_checkpoint(experiment / "no-such-dir", "aaaa0001")


def test_load_checkpoint_not_written_by_report_epoch_points_to_its_folder(tmp_path):
    foreign = tmp_path / "pareto" / "eeee0005" / "checkpoint"
    foreign.mkdir(parents=True)
    (foreign / "model.pkl").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"checkpoint: got .*eeee0005/checkpoint', which has no trial_state\.pt"):
        load_checkpoint(tmp_path, "eeee0005")


# --- checkpoint_path ---------------------------------------------------------------------------------


def test_checkpoint_path_prefers_the_recorded_checkpoint_then_the_newest_folder(tmp_path):
    trial = tmp_path / "trial"
    for index in (0, 9, 10):
        (trial / f"checkpoint_{index:06d}").mkdir(parents=True)
    (trial / "checkpoint_tmp").mkdir()  # not a numbered checkpoint
    recorded = SimpleNamespace(path=str(trial / "checkpoint_000009"))
    assert checkpoint_path(SimpleNamespace(checkpoint=recorded, path=str(trial))) == recorded.path
    # A restored run whose state names a deleted checkpoint, or none: the newest on disk.
    gone = SimpleNamespace(path=str(trial / "checkpoint_000003"))
    assert checkpoint_path(SimpleNamespace(checkpoint=gone, path=str(trial))) == str(trial / "checkpoint_000010")
    assert checkpoint_path(SimpleNamespace(checkpoint=None, path=str(trial))) == str(trial / "checkpoint_000010")
    # Remote storage is not checked: the recorded path is kept.
    remote = SimpleNamespace(path="bucket/exp/trial/checkpoint_000004")
    assert checkpoint_path(SimpleNamespace(checkpoint=remote, path="bucket/exp/trial")) == remote.path
    assert checkpoint_path(SimpleNamespace(checkpoint=None, path=str(tmp_path / "empty"))) == ""


# --- under Ray ---------------------------------------------------------------------------------------

PROBE = torch.tensor([[1.0, -1.0], [0.5, 2.0]])
EPOCHS = 4


def probe_net(width: int) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, width), nn.Tanh(), nn.Linear(width, 1))


def train_probe_net(config: dict) -> None:
    """A Tune trainable that reports its predictions on ``PROBE`` with every checkpoint."""
    model = probe_net(config["width"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    features = torch.linspace(-1, 1, 32).reshape(16, 2)
    targets = features.sum(dim=1, keepdim=True)
    for epoch in range(restore_from_checkpoint(model, optimizer), config["epochs"]):
        optimizer.zero_grad()
        loss = ((model(features) - targets) ** 2).mean()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            predictions = model(PROBE).flatten().tolist()
        metrics = {"loss": loss.item(), "num_params": count_parameters(model)}
        metrics.update({f"prediction_{i}": value for i, value in enumerate(predictions)})
        report_epoch(metrics, model=model, optimizer=optimizer, epoch=epoch)


@pytest.mark.ray
def test_real_tune_run_keeps_bounded_checkpoints_and_exports_models_that_predict_as_trained(ray_session, tmp_path):
    from ray import tune

    tuner = tune.Tuner(
        tune.with_resources(train_probe_net, {"cpu": 1}),
        param_space={"width": tune.grid_search([1, 3]), "epochs": EPOCHS},
        run_config=tune.RunConfig(
            name="exp", storage_path=str(tmp_path), checkpoint_config=checkpoint_config(), verbose=0
        ),
    )
    grid = tuner.fit()
    assert grid.num_errors == 0
    kept = [f"checkpoint_{index:06d}" for index in range(EPOCHS - CHECKPOINTS_TO_KEEP, EPOCHS)]
    rows = []
    for result in grid:
        assert sorted(p.name for p in Path(result.path).glob("checkpoint_*")) == kept
        assert checkpoint_path(result) == str(Path(result.path) / kept[-1])
        rows.append({
            **{key: result.metrics[key] for key in ("trial_id", "training_iteration", "loss", "num_params")},
            **{key: value for key, value in result.metrics.items() if key.startswith("prediction_")},
            "config/width": result.config["width"], "config/epochs": result.config["epochs"],
            "checkpoint": checkpoint_path(result),
        })
    experiment_dir = tmp_path / "exp"
    front = pareto_front(pd.DataFrame(rows), {"loss": "min", "num_params": "min"})
    front.to_csv(experiment_dir / PARETO_FILENAME, index=False)

    folder = export_pareto(experiment_dir)
    assert export_summary(folder)["trial_id"].tolist() == front["trial_id"].tolist()
    for trial_id in front["trial_id"]:
        config = json.loads((folder / trial_id / "config.json").read_text())
        metrics = json.loads((folder / trial_id / "metrics.json").read_text())
        state = load_checkpoint(experiment_dir, trial_id)
        assert state["epoch"] == EPOCHS - 1 and metrics["training_iteration"] == EPOCHS
        model = probe_net(config["width"])
        model.load_state_dict(state["model"])
        with torch.no_grad():
            predictions = model(PROBE).flatten().tolist()
        assert predictions == pytest.approx([metrics["prediction_0"], metrics["prediction_1"]], rel=1e-6)
