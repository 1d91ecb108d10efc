"""Helpers for writing your own Ray Tune function trainables in PyTorch.

A function trainable reports one row of metrics per epoch; the orchestrator turns those rows
into a Pareto front. These helpers cover what every such trainable repeats: the cost
objectives (parameter count, size, inference latency), the per-epoch checkpoint that lets
schedulers pause and resume trials, and choosing the device Ray gave the trial.
See ``orchestrator/demo.py`` for a complete trainable built from them.

Example:
    >>> def train(config):
    ...     model, optimizer = build(config)
    ...     device = pick_device(config)
    ...     model.to(device)
    ...     for epoch in range(restore_from_checkpoint(model, optimizer), config["epochs"]):
    ...         accuracy = fit_one_epoch(model, optimizer)
    ...         report_epoch({"accuracy": accuracy, "num_params": count_parameters(model)},
    ...                      model=model, optimizer=optimizer, epoch=epoch)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

CHECKPOINT_FILE = "trial_state.pt"
"""Name of the file ``report_epoch`` writes inside each checkpoint directory."""

# Looked up at call time so tests can substitute a deterministic clock.
_clock = time.perf_counter


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars: ``sum_p p.numel()`` over parameters with ``requires_grad``.

    Example:
        >>> count_parameters(nn.Linear(3, 2))
        8
    """
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


def model_size_bytes(model: nn.Module) -> int:
    """Memory held by the model's tensors: ``sum_t t.numel() * t.element_size()`` over
    parameters (trainable or frozen) and buffers (e.g. batch-norm running statistics).

    Example:
        >>> model_size_bytes(nn.Linear(3, 2))  # 8 float32 values
        32
    """
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


def _as_input_tuple(example_input: Any) -> tuple:
    return tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)


def _infer_batch_size(inputs: tuple) -> int:
    for item in inputs:
        shape = getattr(item, "shape", None)
        if shape is not None and len(shape) > 0:
            return int(shape[0])
    raise ValueError(
        "measure_latency could not infer the batch size: no input has a leading dimension; "
        "pass batch_size=<samples per call>."
    )


def measure_latency(
    model: nn.Module,
    example_input: torch.Tensor | Sequence[torch.Tensor],
    *,
    repeats: int = 20,
    warmup: int = 3,
    batch_size: int | None = None,
) -> float:
    """Median inference latency per sample, in microseconds.

    ``latency_us = 1e6 * median_r(seconds of model(*example_input) in call r) / batch_size``,
    measured in eval mode under ``torch.inference_mode()``. When an input lives on a CUDA
    device the GPU is synchronised before starting and after every call, because kernel
    launches return before the work finishes. The model's train/eval mode (per submodule) is
    restored afterwards.

    Args:
        model: The module to time; it must already be on the inputs' device.
        example_input: A tensor, or a tuple/list of tensors passed as positional arguments.
        repeats: Timed calls; the median is robust to the odd slow call.
        warmup: Untimed calls first (allocator, cuDNN autotuning, lazy init).
        batch_size: Samples per call; defaults to the first input's leading dimension.

    Returns:
        Median microseconds per sample (float > 0 in practice).

    Example:
        >>> measure_latency(nn.Linear(8, 2), torch.randn(64, 8), repeats=5) > 0
        True
    """
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}.")
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an integer >= 0, got {warmup!r}.")
    inputs = _as_input_tuple(example_input)
    if batch_size is None:
        batch_size = _infer_batch_size(inputs)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}.")

    cuda_devices = {
        device
        for device in (getattr(item, "device", None) for item in inputs)
        if isinstance(device, torch.device) and device.type == "cuda"
    }

    def synchronise() -> None:
        for device in cuda_devices:
            torch.cuda.synchronize(device)

    training_flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(*inputs)
            synchronise()
            durations = []
            for _ in range(repeats):
                start = _clock()
                model(*inputs)
                synchronise()
                durations.append(_clock() - start)
    finally:
        for module, was_training in training_flags:
            module.training = was_training
    return statistics.median(durations) * 1e6 / batch_size


def _inside_ray_actor() -> bool:
    # Tune runs function trainables inside actors; only there does ray.get_gpu_ids() describe
    # this trial's allocation. Checking sys.modules avoids importing Ray outside Ray.
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return False
    return ray.get_runtime_context().get_actor_id() is not None


def pick_device(config: Mapping[str, Any] | None = None) -> torch.device:
    """The device a trial should train on.

    ``config["device"]`` wins when given (e.g. ``"cpu"`` to force CPU). Otherwise CUDA when
    PyTorch sees a GPU and, inside a Ray trial, Ray assigned this trial a GPU
    (``ray.get_gpu_ids()`` non-empty; request one with ``resources.gpu``); else CPU.

    Example:
        >>> pick_device({"device": "cpu"})
        device(type='cpu')
    """
    requested = (config or {}).get("device")
    if requested is not None:
        try:
            device = torch.device(requested)
        except (RuntimeError, TypeError) as error:
            raise ValueError(
                f"config['device'] must name a torch device such as 'cpu' or 'cuda', "
                f"got {requested!r}."
            ) from error
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"config['device']={requested!r} but PyTorch sees no CUDA GPU here; "
                "use 'cpu' or request GPUs for the trial with resources.gpu."
            )
        return device
    if not torch.cuda.is_available():
        return torch.device("cpu")
    if _inside_ray_actor():
        import ray

        return torch.device("cuda") if ray.get_gpu_ids() else torch.device("cpu")
    return torch.device("cuda")


def report_epoch(
    metrics: Mapping[str, Any],
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    epoch: int,
    extra_state: Any = None,
) -> None:
    """Report one epoch's metrics to Ray Tune together with a checkpoint of the trial.

    The checkpoint holds ``{"model", "optimizer", "epoch", "extra"}`` saved with ``torch.save``
    in a temporary directory; ``ray.tune.report`` copies it into the experiment's storage
    before returning, so the directory can vanish afterwards. Schedulers that pause trials
    (ASHA promotions, PBT) and ``resume=True`` restart from it via
    :func:`restore_from_checkpoint`.

    Args:
        metrics: Objective and diagnostic values for this epoch.
        model: Its ``state_dict`` is saved.
        optimizer: Its ``state_dict`` is saved when given.
        epoch: 0-based index of the epoch that just finished.
        extra_state: Anything else to restore (e.g. an LR scheduler's ``state_dict``); it is
            loaded with ``weights_only=True``, so keep it to tensors, numbers, strings and
            containers of them.

    Example:
        >>> model = nn.Linear(4, 2)
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> report_epoch({"accuracy": 0.9}, model=model, optimizer=optimizer, epoch=3)

        Outside a Tune trial, Ray only warns and nothing is stored.
    """
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a mapping of metric name to value, got {metrics!r}.")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch must be the 0-based index of the finished epoch, got {epoch!r}.")
    from ray import tune

    state = {
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "epoch": epoch,
        "extra": extra_state,
    }
    with tempfile.TemporaryDirectory(prefix="trial-checkpoint-") as directory:
        torch.save(state, Path(directory) / CHECKPOINT_FILE)
        tune.report(dict(metrics), checkpoint=tune.Checkpoint.from_directory(directory))


def load_trial_state(map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The state dict last saved by :func:`report_epoch` for this trial, or ``None``.

    Reads ``ray.tune.get_checkpoint()``; use it when you need ``extra_state`` back.

    Example:
        >>> state = load_trial_state()
        >>> lr_scheduler.load_state_dict(state["extra"]) if state else None
    """
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        return read_trial_state(directory, map_location)


def read_trial_state(directory: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The state dict that :func:`report_epoch` saved into one checkpoint directory.

    Needs no Ray session: use it on a checkpoint folder on disk (a trial's ``checkpoint_000007``
    or an exported ``pareto/<trial_id>/checkpoint``); :func:`load_trial_state` uses it inside a
    trial, ``orchestrator.export.load_checkpoint`` after the experiment.

    Returns:
        ``{"model", "optimizer", "epoch", "extra"}`` as saved, loaded with ``weights_only=True``.

    Raises:
        FileNotFoundError: if the directory holds no ``trial_state.pt`` (it was not written by
            :func:`report_epoch`).

    Example:
        >>> import tempfile
        >>> directory = tempfile.mkdtemp()
        >>> torch.save({"model": nn.Linear(2, 1).state_dict(), "optimizer": None, "epoch": 4,
        ...             "extra": None}, Path(directory) / CHECKPOINT_FILE)
        >>> read_trial_state(directory)["epoch"]
        4
    """
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint: got {str(directory)!r}, which has no {CHECKPOINT_FILE}; it was not written by "
            "orchestrator.trainable.report_epoch, so load its files with what the trainable saved them with."
        )
    return torch.load(path, map_location=map_location, weights_only=True)


def restore_from_checkpoint(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    map_location: str | torch.device = "cpu",
) -> int:
    """Load the trial's latest :func:`report_epoch` checkpoint into ``model`` (and ``optimizer``).

    Returns:
        The 0-based index of the next epoch to run: ``saved epoch + 1``, or ``0`` when the trial
        starts fresh. Use it as ``range(restore_from_checkpoint(model, opt), epochs)``.

    Example:
        >>> model = nn.Linear(4, 2)
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> restore_from_checkpoint(model, optimizer)  # a fresh trial has no checkpoint yet
        0
    """
    state = load_trial_state(map_location)
    if state is None:
        return 0
    model.load_state_dict(state["model"])
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    return int(state["epoch"]) + 1
