"""The cluster configurations shipped in ``cluster/configs/``, and their validation.

``aws-gpu.yaml`` and ``gcp-gpu.yaml`` start GPU clusters with ``ray up``; ``fake-multinode.yaml``
emulates GPU nodes on one machine; ``kuberay-rayjob.yaml`` runs one experiment as a KubeRay
``RayJob``. :func:`validate_ray_up_config` checks a ``ray up`` file the way ``ray up`` does
before it launches anything (Ray's defaults merged in, then Ray's JSON schema), plus what this
project needs (GPU worker types, this package installed on every node);
:func:`validate_rayjob` checks the structure of a ``RayJob`` manifest (no Kubernetes needed).

Example:
    >>> prepared = validate_ray_up_config(CONFIG_DIR / "aws-gpu.yaml")
    >>> prepared["available_node_types"]["gpu_worker"]["resources"]
    {'CPU': 8, 'GPU': 1}
    >>> validate_rayjob(CONFIG_DIR / "kuberay-rayjob.yaml")["kind"]
    'RayJob'
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CONFIG_DIR",
    "ConfigError",
    "RAY_UP_CONFIGS",
    "RAYJOB_MANIFEST",
    "load_config",
    "validate_ray_up_config",
    "validate_rayjob",
]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
RAY_UP_CONFIGS = ("aws-gpu.yaml", "gcp-gpu.yaml", "fake-multinode.yaml")
RAYJOB_MANIFEST = "kuberay-rayjob.yaml"
# What every node must run so that workers can import the trainables.
_INSTALL_COMMAND = "pip install"
_PACKAGE_PATH = "tune-orchestrator"


class ConfigError(ValueError):
    """A cluster configuration that ``ray up`` or KubeRay would refuse, or that could not run an
    experiment; the message starts with the file and the key path at fault."""


def load_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """A YAML file (or an already loaded mapping) as a dict; raises :class:`ConfigError` if not one.

    Example:
        >>> load_config({"cluster_name": "x"})
        {'cluster_name': 'x'}
    """
    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source))
    data = yaml.safe_load(Path(source).read_text())
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: got a {type(data).__name__} at the top level; a config is a mapping.")
    return data


def _ray_prepare_and_validate(config: dict[str, Any]) -> dict[str, Any]:
    """What ``ray up`` runs first (Ray 2.60, ``ray.autoscaler._private.commands``): defaults
    merged in, then the JSON schema. Ray has no public API for it; tests/cluster/test_configs.py
    fails loudly if these functions move."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    if config.get("provider", {}).get("type") == "fake_multinode":
        # Ray 2.60's wheel lacks this provider's defaults file (fake_multi_node/example.yaml), so
        # prepare_config fails; the config spells out every field and goes to the schema as is.
        validate_config(config)
        return config
    prepared = prepare_config(config)
    validate_config(prepared)
    return prepared


def validate_ray_up_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Check a ``ray up`` cluster config; return it as ``ray up`` prepares it.

    Ray's own checks first, then this project's: at least one worker node type declares GPUs
    in ``resources``, and (except for the ``fake_multinode`` provider, whose nodes share this
    machine's Python) ``setup_commands`` install this package.

    Raises:
        ConfigError: naming the file, the key and the fix (Ray's schema errors are passed on
            with the offending key path).
    """
    import jsonschema

    where = str(source) if not isinstance(source, Mapping) else "config"
    config = load_config(source)
    try:
        prepared = _ray_prepare_and_validate(config)
    except jsonschema.ValidationError as error:
        path = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        raise ConfigError(f"{where}: {path}: {error.message}; see Ray's cluster config reference.") from None
    except (ValueError, KeyError, FileNotFoundError) as error:
        raise ConfigError(f"{where}: Ray refused the config: {error}") from None
    node_types = prepared.get("available_node_types", {})
    head = prepared.get("head_node_type")
    gpu_types = [
        name for name, node_type in node_types.items()
        if name != head and float(node_type.get("resources", {}).get("GPU", 0)) > 0
    ]
    if not gpu_types:
        raise ConfigError(
            f"{where}: available_node_types: no worker type declares GPUs; give a worker type "
            "resources: {CPU: 8, GPU: 1} (Ray schedules GPU trials on what resources declare)."
        )
    if prepared["provider"]["type"] != "fake_multinode":
        commands = " ".join(prepared.get("setup_commands", []))
        if _INSTALL_COMMAND not in commands or _PACKAGE_PATH not in commands:
            raise ConfigError(
                f"{where}: setup_commands: this package is not installed on the nodes; add "
                "`pip install -c ~/tune-orchestrator/constraints.txt -e ~/tune-orchestrator` "
                "(with file_mounts: {~/tune-orchestrator: .})."
            )
    return prepared


def _at(manifest: Mapping[str, Any], path: str, where: str) -> Any:
    """The value at ``a.b[0].c`` in ``manifest``; :class:`ConfigError` naming the path if absent."""
    value: Any = manifest
    for part in path.replace("]", "").replace("[", ".").split("."):
        key: Any = int(part) if part.isdigit() else part
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            raise ConfigError(f"{where}: {path}: missing; a RayJob needs it (see KubeRay's RayJob reference).") from None
    return value


def validate_rayjob(source: str | os.PathLike[str] | Mapping[str, Any], ray_version: str | None = None) -> dict[str, Any]:
    """Check the structure of a KubeRay ``RayJob`` manifest that runs an experiment on GPU workers.

    Checks ``apiVersion: ray.io/v1`` and ``kind: RayJob``; an ``entrypoint`` that runs
    ``python -m orchestrator run``; ``rayVersion`` equal to ``ray_version`` (the installed Ray
    when None), since the driver and the cluster must run the same Ray; string-valued
    ``rayStartParams`` (a Kubernetes string map); a container with an image in every group; a
    worker group with ``nvidia.com/gpu`` in its container limits and ``minReplicas <= replicas
    <= maxReplicas``; and one shared volume mounted at the same path on the head and on every
    GPU worker (the checkpoints' storage).

    Raises:
        ConfigError: naming the file, the key path and the fix.
    """
    where = str(source) if not isinstance(source, Mapping) else "manifest"
    manifest = load_config(source)
    if (manifest.get("apiVersion"), manifest.get("kind")) != ("ray.io/v1", "RayJob"):
        raise ConfigError(
            f"{where}: apiVersion/kind: got {manifest.get('apiVersion')!r}/{manifest.get('kind')!r}; "
            "use apiVersion: ray.io/v1 and kind: RayJob (KubeRay >= 1.1)."
        )
    entrypoint = _at(manifest, "spec.entrypoint", where)
    if not str(entrypoint).startswith("python -m orchestrator run "):
        raise ConfigError(
            f"{where}: spec.entrypoint: got {entrypoint!r}; use `python -m orchestrator run <experiment.yaml>`."
        )
    if ray_version is None:
        import ray

        ray_version = ray.__version__
    cluster = _at(manifest, "spec.rayClusterSpec", where)
    if str(cluster.get("rayVersion")) != ray_version:
        raise ConfigError(
            f"{where}: spec.rayClusterSpec.rayVersion: got {cluster.get('rayVersion')!r}; use {ray_version!r}, "
            "the Ray this package pins (driver and cluster must match)."
        )
    groups = {"headGroupSpec": _at(cluster, "headGroupSpec", where)}
    workers = _at(cluster, "workerGroupSpecs", where)
    if not isinstance(workers, list) or not workers:
        raise ConfigError(f"{where}: spec.rayClusterSpec.workerGroupSpecs: got {workers!r}; give at least one GPU worker group.")
    groups.update({f"workerGroupSpecs[{index}]": group for index, group in enumerate(workers)})
    mounts: dict[str, dict[str, str]] = {}
    gpu_groups = []
    for name, group in groups.items():
        prefix = f"spec.rayClusterSpec.{name}"
        for key, value in (group.get("rayStartParams") or {}).items():
            if not isinstance(value, str):
                raise ConfigError(f"{where}: {prefix}.rayStartParams.{key}: got {value!r}; quote it (\"{value}\"), Kubernetes takes strings.")
        containers = _at(group, "template.spec.containers", f"{where}: {prefix}")
        if not containers or not all(container.get("image") for container in containers):
            raise ConfigError(f"{where}: {prefix}.template.spec.containers: every container needs an image.")
        claims = {
            volume["name"]: volume["persistentVolumeClaim"]["claimName"]
            for volume in group["template"]["spec"].get("volumes", [])
            if "persistentVolumeClaim" in volume
        }
        mounts[name] = {
            mount["mountPath"]: claims[mount["name"]]
            for mount in containers[0].get("volumeMounts", [])
            if mount.get("name") in claims
        }
        if name != "headGroupSpec":
            gpus = (containers[0].get("resources", {}).get("limits", {}) or {}).get("nvidia.com/gpu")
            if gpus is not None and float(gpus) >= 1:
                gpu_groups.append(name)
                replicas = [group.get(key) for key in ("minReplicas", "replicas", "maxReplicas")]
                if not all(isinstance(count, int) for count in replicas) or not replicas[0] <= replicas[1] <= replicas[2]:
                    raise ConfigError(
                        f"{where}: {prefix}: got minReplicas/replicas/maxReplicas {replicas}; use integers "
                        "with minReplicas <= replicas <= maxReplicas."
                    )
    if not gpu_groups:
        raise ConfigError(
            f"{where}: spec.rayClusterSpec.workerGroupSpecs: no group asks for GPUs; set "
            "resources.limits: {nvidia.com/gpu: \"1\"} on a worker group's container."
        )
    shared = set(mounts["headGroupSpec"].items())
    for name in gpu_groups:
        shared &= set(mounts[name].items())
    if not shared:
        raise ConfigError(
            f"{where}: volumeMounts: the head and the GPU workers share no persistent volume at one path; "
            "mount the same ReadWriteMany claim (e.g. at /mnt/shared) in all of them and keep storage_path there."
        )
    return manifest
