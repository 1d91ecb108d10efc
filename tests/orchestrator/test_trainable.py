"""Tests for orchestrator.trainable: cost metrics, latency timing, device choice, checkpoints.

Ray's session functions are replaced by the ``session`` fixture (a :class:`FakeTuneSession`,
see ``tests/orchestrator/conftest.py``), so no Ray cluster starts.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from orchestrator import trainable
from orchestrator.trainable import (
    CHECKPOINT_FILE,
    count_parameters,
    load_trial_state,
    measure_latency,
    model_size_bytes,
    pick_device,
    report_epoch,
    restore_from_checkpoint,
)


class FakeClock:
    """A clock that only moves when a :class:`ClockedModel` runs."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ClockedModel(nn.Module):
    """Advances the fake clock by the next scripted duration on every forward call and records
    the mode it was called in."""

    def __init__(self, clock: FakeClock, durations: list[float]):
        super().__init__()
        self.clock, self.durations = clock, list(durations)
        self.layer = nn.Linear(4, 2)
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, *inputs):
        self.calls.append((self.training, torch.is_inference_mode_enabled()))
        self.clock.now += self.durations.pop(0)
        return None


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(trainable, "_clock", fake)
    return fake


# --- count_parameters / model_size_bytes ---------------------------------------------------


def test_count_parameters_counts_weights_and_bias():
    assert count_parameters(nn.Linear(3, 2)) == 3 * 2 + 2


def test_count_parameters_skips_frozen_parameters():
    layer = nn.Linear(3, 2)
    layer.bias.requires_grad_(False)
    assert count_parameters(layer) == 6


def test_model_size_counts_float32_parameters():
    assert model_size_bytes(nn.Linear(3, 2)) == 8 * 4


def test_model_size_counts_frozen_parameters_buffers_and_dtype():
    layer = nn.Linear(3, 2).half()
    layer.weight.requires_grad_(False)
    assert model_size_bytes(layer) == 8 * 2
    # weight+bias (8 float32), running mean+var (8 float32), num_batches_tracked (1 int64).
    assert model_size_bytes(nn.BatchNorm1d(4)) == 16 * 4 + 8


# --- measure_latency -------------------------------------------------------------------------


def test_latency_of_a_real_model_is_positive():
    assert measure_latency(nn.Linear(8, 2), torch.randn(16, 8), repeats=3, warmup=1) > 0


def test_latency_is_median_batch_time_per_sample(clock):
    # warm-up durations are huge and must be ignored; the median of 5, 1, 3 ms is 3 ms.
    model = ClockedModel(clock, [9.0, 9.0, 0.005, 0.001, 0.003])
    latency = measure_latency(model, torch.zeros(4, 4), repeats=3, warmup=2)
    assert latency == pytest.approx(3e-3 * 1e6 / 4)


def test_latency_uses_explicit_batch_size(clock):
    model = ClockedModel(clock, [0.001])
    latency = measure_latency(model, torch.zeros(4, 4), repeats=1, warmup=0, batch_size=8)
    assert latency == pytest.approx(1e-3 * 1e6 / 8)


def test_latency_passes_tuple_inputs_and_reads_batch_from_first(clock):
    received = []

    class TwoInputs(nn.Module):
        def forward(self, first, second):
            received.append((first.shape, second.shape))
            clock.now += 0.002

    latency = measure_latency(TwoInputs(), (torch.zeros(2, 3), torch.zeros(2, 5)), repeats=1)
    assert received[-1] == (torch.Size([2, 3]), torch.Size([2, 5]))
    assert latency == pytest.approx(1e-3 * 1e6)


def test_latency_runs_in_eval_and_inference_mode_then_restores_modes(clock):
    model = ClockedModel(clock, [0.001] * 3)
    model.train()
    model.layer.eval()  # a mixed state must survive, not be flattened by model.train()
    measure_latency(model, torch.zeros(1, 4), repeats=2, warmup=1)
    assert model.calls == [(False, True)] * 3
    assert model.training and not model.layer.training


def test_latency_restores_mode_when_the_model_raises():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    model = Broken().train()
    with pytest.raises(RuntimeError, match="boom"):
        measure_latency(model, torch.zeros(1, 4))
    assert model.training


def test_latency_synchronises_cuda_after_warmup_and_each_call(clock, monkeypatch):
    synchronised = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synchronised.append(device))
    cuda_input = types.SimpleNamespace(shape=(2, 4), device=torch.device("cuda", 0))
    model = ClockedModel(clock, [0.001] * 5)
    measure_latency(model, cuda_input, repeats=3, warmup=2)
    assert synchronised == [torch.device("cuda", 0)] * 4


def test_latency_does_not_synchronise_for_cpu_inputs(clock, monkeypatch):
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: pytest.fail("synced"))
    measure_latency(ClockedModel(clock, [0.001] * 2), torch.zeros(2, 4), repeats=1, warmup=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_latency_on_a_real_gpu_is_positive():
    model = nn.Linear(64, 10).cuda()
    assert measure_latency(model, torch.randn(64, 64, device="cuda"), repeats=5) > 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"repeats": 0}, "repeats must be an integer >= 1, got 0"),
        ({"repeats": 2.5}, "repeats must be an integer >= 1, got 2.5"),
        ({"warmup": -1}, "warmup must be an integer >= 0, got -1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
    ],
)
def test_latency_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        measure_latency(nn.Linear(4, 2), torch.zeros(2, 4), **kwargs)


def test_latency_asks_for_batch_size_when_it_cannot_infer_it():
    with pytest.raises(ValueError, match="pass batch_size"):
        measure_latency(nn.Identity(), torch.tensor(1.0))


# --- pick_device ------------------------------------------------------------------------------


def test_pick_device_honours_config_device():
    assert pick_device({"device": "cpu"}) == torch.device("cpu")


def test_pick_device_rejects_unknown_device_names():
    with pytest.raises(ValueError, match="config\\['device'\\] must name a torch device.*'gpu0'"):
        pick_device({"device": "gpu0"})


def test_pick_device_rejects_cuda_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="sees no CUDA GPU.*resources.gpu"):
        pick_device({"device": "cuda"})


def test_pick_device_falls_back_to_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device() == torch.device("cpu")
    assert pick_device({"lr": 0.1}) == torch.device("cpu")


def test_pick_device_uses_cuda_outside_ray_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(trainable, "_inside_ray_actor", lambda: False)
    assert pick_device() == torch.device("cuda")


@pytest.mark.parametrize("gpu_ids, expected", [([], "cpu"), ([0], "cuda")])
def test_pick_device_inside_ray_follows_the_trials_gpu_allocation(monkeypatch, gpu_ids, expected):
    import ray

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(trainable, "_inside_ray_actor", lambda: True)
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: gpu_ids)
    assert pick_device() == torch.device(expected)


def _fake_ray(initialized: bool, actor_id):
    context = types.SimpleNamespace(get_actor_id=lambda: actor_id)
    return types.SimpleNamespace(
        is_initialized=lambda: initialized, get_runtime_context=lambda: context
    )


@pytest.mark.parametrize(
    "fake_ray, expected",
    [
        (None, False),
        (_fake_ray(initialized=False, actor_id=None), False),
        (_fake_ray(initialized=True, actor_id=None), False),  # the driver
        (_fake_ray(initialized=True, actor_id="a1b2"), True),  # a Tune trial actor
    ],
)
def test_inside_ray_actor(monkeypatch, fake_ray, expected):
    if fake_ray is None:
        monkeypatch.delitem(sys.modules, "ray", raising=False)
    else:
        monkeypatch.setitem(sys.modules, "ray", fake_ray)
    assert trainable._inside_ray_actor() is expected


# --- report_epoch / restore_from_checkpoint ---------------------------------------------------


def _trained_model_and_optimizer(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(8, 4)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_report_epoch_reports_metrics_with_a_tune_checkpoint(session):
    from ray import tune

    model, optimizer = _trained_model_and_optimizer()
    report_epoch({"acc": 0.5}, model=model, optimizer=optimizer, epoch=2, extra_state={"k": 1})
    assert session.metrics == [{"acc": 0.5}]
    assert session.checkpoint_types == [tune.Checkpoint]
    state = torch.load(session.checkpoint_dirs[0] / CHECKPOINT_FILE, weights_only=True)
    assert state["epoch"] == 2 and state["extra"] == {"k": 1}
    assert torch.equal(state["model"]["0.weight"], model[0].weight)
    assert state["optimizer"]["state"][0]["step"] == 1


def test_report_epoch_saves_no_optimizer_when_none_given(session):
    report_epoch({"acc": 0.5}, model=nn.Linear(2, 1), epoch=0)
    state = torch.load(session.checkpoint_dirs[0] / CHECKPOINT_FILE, weights_only=True)
    assert state["optimizer"] is None and state["extra"] is None


def test_report_epoch_does_not_leave_its_temporary_directory_behind(session, monkeypatch):
    from ray import tune

    seen = []
    monkeypatch.setattr(tune, "report", lambda metrics, checkpoint: seen.append(checkpoint.path))
    report_epoch({}, model=nn.Linear(2, 1), epoch=0)
    assert not Path(seen[0]).exists()


@pytest.mark.parametrize("epoch", [-1, 1.5, True, None])
def test_report_epoch_rejects_bad_epochs(session, epoch):
    with pytest.raises(ValueError, match=f"epoch must be the 0-based index.*got {epoch!r}"):
        report_epoch({}, model=nn.Linear(2, 1), epoch=epoch)
    assert session.metrics == []


def test_report_epoch_rejects_non_mapping_metrics(session):
    with pytest.raises(TypeError, match="metrics must be a mapping"):
        report_epoch([0.5], model=nn.Linear(2, 1), epoch=0)


def test_restore_without_checkpoint_starts_at_epoch_zero(session):
    model = nn.Linear(2, 1)
    before = model.weight.detach().clone()
    assert restore_from_checkpoint(model) == 0
    assert torch.equal(model.weight, before)
    assert load_trial_state() is None


def test_restore_round_trips_model_optimizer_and_epoch(session):
    model, optimizer = _trained_model_and_optimizer(seed=0)
    report_epoch({"acc": 0.5}, model=model, optimizer=optimizer, epoch=4)
    session.resume_from(0)

    fresh_model, fresh_optimizer = _trained_model_and_optimizer(seed=1)
    assert not torch.equal(fresh_model[0].weight, model[0].weight)
    assert restore_from_checkpoint(fresh_model, fresh_optimizer) == 5
    for name, tensor in model.state_dict().items():
        assert torch.equal(fresh_model.state_dict()[name], tensor), name
    expected = optimizer.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(fresh_optimizer.state_dict()["state"][0]["exp_avg"], expected)


def test_restore_leaves_optimizer_alone_when_checkpoint_has_none(session):
    report_epoch({}, model=nn.Linear(2, 1), epoch=0)
    session.resume_from(0)
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = optimizer.state_dict()
    assert restore_from_checkpoint(model, optimizer) == 1
    assert optimizer.state_dict() == before


def test_load_trial_state_returns_extra_state(session):
    report_epoch({}, model=nn.Linear(2, 1), epoch=3, extra_state={"rng": torch.arange(3)})
    session.resume_from(0)
    state = load_trial_state()
    assert state["epoch"] == 3 and torch.equal(state["extra"]["rng"], torch.arange(3))


def test_restore_rejects_checkpoints_not_written_by_report_epoch(session, tmp_path):
    from ray import tune

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "model.pkl").write_bytes(b"")
    session.loaded_checkpoint = tune.Checkpoint.from_directory(foreign)
    with pytest.raises(FileNotFoundError, match=f"no {CHECKPOINT_FILE}.*not written by"):
        restore_from_checkpoint(nn.Linear(2, 1))
