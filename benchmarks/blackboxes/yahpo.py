"""YAHPO Gym surrogate benchmarks (``yahpo-gym`` + ``onnxruntime``) as blackboxes.

A scenario (``lcbench``, ``rbv2_xgboost``, ``iaml_glmnet``, ...) is a surrogate model of one
learning algorithm over many datasets (instances). Choices made here:

* the fidelity is the scenario's first fidelity parameter other than ``repl``; any other
  fidelity parameter is fixed to its upper bound (``repl = 10``, the last replication, as in
  Syne Tune's YAHPO integration);
* ``cost`` is the scenario's runtime target (``time`` for lcbench: cumulative seconds up to that
  epoch; ``timetrain`` for rbv2/iaml: seconds to train on that fraction), clipped at 0 since the
  surrogate can extrapolate below it;
* the ConfigSpace search space becomes flat Tune domains (uniform/loguniform/randint/
  lograndint/choice) without the instance and fidelity parameters; parameters that a
  configuration's conditions make inactive (e.g. ``eta`` when ``booster="gblinear"``) are
  dropped before querying the surrogate;
* :meth:`YahpoBlackbox.objective_bounds` are the ranges over 1,000 random configurations
  (seed 0) at full fidelity, since a surrogate has no finite pool to take them from.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import io
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.blackboxes.base import Blackbox, Fidelity, select_objectives

DEFAULT_OBJECTIVES = {"lcbench": "val_accuracy", "rbv2_": "acc", "iaml_": "mmce"}
# Targets to maximise; every other target (errors, losses, times, memory, ...) is minimised.
MAXIMISED_TARGETS = {"acc", "bac", "auc", "f1"}
FIXED_FIDELITY_PARAMETERS = ("repl",)
BOUNDS_SAMPLES = 1000
INSTALL_HINT = "pip install 'tune-orchestrator[bench]' (or: pip install yahpo-gym onnxruntime)"


def _yahpo_dir(data_dir: str | Path) -> Path:
    data_dir = Path(data_dir).expanduser().resolve()
    return data_dir / "yahpo" if (data_dir / "yahpo").is_dir() else data_dir


def _import_yahpo():
    try:
        from yahpo_gym import BenchmarkSet, local_config
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(f"YAHPO blackboxes need yahpo-gym and onnxruntime: {INSTALL_HINT}.") from error
    return BenchmarkSet, local_config


@lru_cache(maxsize=16)
def _benchmark_set(data_dir: Path, scenario: str):
    """One cached ``BenchmarkSet`` per (data folder, scenario), shared by all instances.

    The instance is passed in every query rather than set on the object, so sharing is safe.
    yahpo-gym reads its data folder from a settings file at construction time; we point it at
    ``data_dir`` (creating the file on first use) just before constructing.
    """
    BenchmarkSet, local_config = _import_yahpo()
    if not (data_dir / scenario).is_dir():
        found = sorted(p.name for p in data_dir.iterdir() if p.is_dir()) if data_dir.is_dir() else []
        raise ValueError(f"scenario={scenario!r} has no folder in {data_dir}; available: {found}.")
    # The settings file is rewritten in place; processes doing this at once (parallel benchmark
    # jobs) can read it half-written, so they take turns.
    lock_path = Path(local_config.settings_path).parent / "settings.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            local_config.config  # noqa: B018 - loads the settings file, raising if absent
        except Exception:
            local_config.init_config(data_path=str(data_dir))
        local_config.set_data_path(str(data_dir))
        with contextlib.redirect_stdout(io.StringIO()):  # silence the citation banner
            return BenchmarkSet(scenario, multithread=False)


def available_instances(data_dir: str | Path, scenario: str) -> list[str]:
    """Instances (dataset ids) of ``scenario`` in ``data_dir`` (the ``yahpo`` folder or its parent).

    Example:
        >>> available_instances("/work/shared/benchmarks", "iaml_glmnet")  # doctest: +SKIP
        ['40981', '41146', '1489', '1067']
    """
    return [str(i) for i in _benchmark_set(_yahpo_dir(data_dir), scenario).instances]


def _target_mode(target: str) -> str:
    return "max" if target in MAXIMISED_TARGETS or "accuracy" in target else "min"


def _hyperparameters(space) -> list:
    return list(space.values()) if hasattr(space, "values") else space.get_hyperparameters()


def _to_domain(hp):
    """One ConfigSpace hyperparameter as a Ray Tune domain (Tune's integer bounds are exclusive)."""
    from ray import tune

    kind = type(hp).__name__
    if kind == "UniformFloatHyperparameter":
        return tune.loguniform(hp.lower, hp.upper) if hp.log else tune.uniform(hp.lower, hp.upper)
    if kind == "UniformIntegerHyperparameter":
        return tune.lograndint(hp.lower, hp.upper + 1) if hp.log else tune.randint(hp.lower, hp.upper + 1)
    if kind == "CategoricalHyperparameter":
        return tune.choice(list(hp.choices))
    if kind == "OrdinalHyperparameter":
        return tune.choice(list(hp.sequence))
    raise NotImplementedError(f"hyperparameter {hp.name!r} of type {kind} has no Tune domain conversion.")


def _unit_value(hp, value: Any) -> float:
    """Position of ``value`` in ``hp``'s range as a number in [0, 1] (log scale where declared)."""
    if hasattr(hp, "choices") or hasattr(hp, "sequence"):
        options = list(hp.choices) if hasattr(hp, "choices") else list(hp.sequence)
        position = options.index(value) if value in options else options.index(hp.default_value)
        return position / (len(options) - 1) if len(options) > 1 else 0.0
    low, high, value = float(hp.lower), float(hp.upper), float(value)
    if hp.log:
        low, high, value = np.log(low), np.log(high), np.log(max(value, float(hp.lower)))
    return float(np.clip((value - low) / (high - low), 0.0, 1.0)) if high > low else 0.0


class YahpoBlackbox(Blackbox):
    """One instance of a YAHPO Gym scenario, queried through its ONNX surrogate.

    ``cost`` = the surrogate's runtime target at the requested fidelity.

    Args:
        data_dir: the ``yahpo`` folder (or its parent) holding ``<scenario>/model.onnx`` etc.
        scenario: e.g. ``"lcbench"``, ``"rbv2_xgboost"``, ``"rbv2_rpart"``, ``"iaml_glmnet"``.
        instance: a dataset id from :func:`available_instances`, e.g. ``"3945"``.
        objectives: target names (``"acc,timepredict"``, a list, or ``{name: mode}``); default
            ``val_accuracy`` (lcbench), ``acc`` (rbv2_*), ``mmce`` (iaml_*).

    Example:
        >>> box = YahpoBlackbox("/work/shared/benchmarks", "lcbench", "3945")  # doctest: +SKIP
        >>> box.evaluate({"batch_size": 64, "learning_rate": 0.01, "max_dropout": 0.2,
        ...               "max_units": 256, "momentum": 0.9, "num_layers": 3,
        ...               "weight_decay": 1e-4}, fidelity=10)  # doctest: +SKIP
        {'val_accuracy': 90.139..., 'cost': 40.902...}
    """

    def __init__(
        self,
        data_dir: str | Path,
        scenario: str,
        instance: str,
        objectives: str | Sequence[str] | Mapping[str, str] | None = None,
    ) -> None:
        self._init_args = (str(data_dir), scenario, str(instance), objectives)
        self._bench = _benchmark_set(_yahpo_dir(data_dir), scenario)
        config = self._bench.config
        instances = [str(i) for i in self._bench.instances]
        if str(instance) not in instances:
            raise ValueError(
                f"instance={instance!r} is not in scenario {scenario!r}; available: {instances[:20]}"
                f"{' ...' if len(instances) > 20 else ''}."
            )
        self.name = f"yahpo:{scenario}"
        self.scenario = scenario
        self.instance = str(instance)
        self._instance_name = config.instance_names
        self._runtime_name = config.runtime_name
        targets = {target: _target_mode(target) for target in config.y_names}
        default = next((t for prefix, t in DEFAULT_OBJECTIVES.items() if scenario.startswith(prefix)), None)
        if default not in targets:
            default = next(t for t in config.y_names if t != self._runtime_name)
        self.objectives = select_objectives(objectives, targets, [default])

        space = self._bench.config_space
        fidelity_names = list(config.fidelity_params)
        primary = next((n for n in fidelity_names if n not in FIXED_FIDELITY_PARAMETERS), None)
        self._fixed = {
            name: space.get_hyperparameter(name).upper for name in fidelity_names if name != primary
        }
        self._fidelity_name = primary
        self.fidelity = self._make_fidelity(space.get_hyperparameter(primary)) if primary else None
        excluded = {self._instance_name, *fidelity_names}
        self._hyperparameters = [
            hp for hp in _hyperparameters(space)
            if hp.name not in excluded and type(hp).__name__ not in ("Constant", "UnParametrizedHyperparameter")
        ]
        self._bounds: dict[str, tuple[float, float]] | None = None

    @staticmethod
    def _make_fidelity(hp) -> Fidelity:
        low, high = float(hp.lower), float(hp.upper)
        if type(hp).__name__ == "UniformIntegerHyperparameter":
            return Fidelity(hp.name, low, high, "epoch", [float(t) for t in range(int(low), int(high) + 1)])
        steps = [high]
        while steps[-1] / 2 >= low:  # geometric halving, as successive halving would use
            steps.append(steps[-1] / 2)
        return Fidelity(hp.name, low, high, "fraction", sorted(steps))

    def __reduce__(self) -> tuple[type, tuple]:
        # The ONNX session does not pickle; a worker process reopens the surrogate instead.
        return type(self), self._init_args

    def search_space(self) -> dict[str, Any]:
        return {hp.name: _to_domain(hp) for hp in self._hyperparameters}

    def features_of(self, config: Mapping[str, Any]) -> np.ndarray:
        return np.array([_unit_value(hp, config.get(hp.name, hp.default_value)) for hp in self._hyperparameters])

    def evaluate(self, config: Mapping[str, Any], fidelity: float | None = None) -> dict[str, float]:
        return self.evaluate_many([config], fidelity)[0]

    def evaluate_many(
        self, configs: Sequence[Mapping[str, Any]], fidelity: float | None = None
    ) -> list[dict[str, float]]:
        """:meth:`evaluate` for several configs in one surrogate call (one ONNX batch)."""
        level = None if self.fidelity is None else (
            self.fidelity.max if fidelity is None else self.fidelity.validate(fidelity)
        )
        queries = [self._query(config, level) for config in configs]
        outputs = self._bench.objective_function(queries)
        results = []
        for output in outputs:
            result = {name: float(output[name]) for name in self.objectives}
            result["cost"] = max(float(output[self._runtime_name]), 0.0)
            results.append(result)
        return results

    def objective_bounds(self) -> dict[str, tuple[float, float]]:
        if self._bounds is None:
            space = copy.deepcopy(self._bench.config_space)
            space.seed(0)
            configs = [c.get_dictionary() if hasattr(c, "get_dictionary") else dict(c)
                       for c in space.sample_configuration(BOUNDS_SAMPLES)]
            results = self.evaluate_many(configs)
            self._bounds = {
                name: (min(r[name] for r in results), max(r[name] for r in results)) for name in self.objectives
            }
        return dict(self._bounds)

    def _query(self, config: Mapping[str, Any], level: float | None) -> dict[str, Any]:
        from ConfigSpace.util import deactivate_inactive_hyperparameters

        values: dict[str, Any] = {}
        for hp in self._hyperparameters:
            value = config.get(hp.name, hp.default_value)
            if hasattr(hp, "lower"):
                # Tune's float domains and searchers' rounding can land a hair outside the range.
                value = min(max(value, hp.lower), hp.upper)
                value = int(round(value)) if "Integer" in type(hp).__name__ else float(value)
            values[hp.name] = value
        values[self._instance_name] = self.instance
        values.update(self._fixed)
        if self._fidelity_name is not None:
            is_integer = self.fidelity.kind == "epoch"
            values[self._fidelity_name] = int(level) if is_integer else float(level)
        active = deactivate_inactive_hyperparameters(values, self._bench.config_space)
        return active.get_dictionary() if hasattr(active, "get_dictionary") else dict(active)
