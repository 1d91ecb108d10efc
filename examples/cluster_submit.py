"""Run an experiment on the Ray cluster this script is submitted to, and print its Pareto front.

``ray submit`` copies this script to the head node of a ``ray up`` cluster and runs it there:

    ray up cluster/configs/aws-gpu.yaml
    ray submit cluster/configs/aws-gpu.yaml examples/cluster_submit.py
    ray submit cluster/configs/aws-gpu.yaml examples/cluster_submit.py -- --resume
    ray rsync-down cluster/configs/aws-gpu.yaml /mnt/shared/results/digits-cluster ./results/

The spec defaults to ``examples/cluster_digits.yaml`` in the copy of the repository that the
cluster config mounts on every node (``~/tune-orchestrator``); its ``cluster.address: auto``
connects to the cluster on the head node. ``--resume`` continues a run whose driver died.

Example:
    python examples/cluster_submit.py --spec examples/cluster_digits.yaml --address auto
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

DEFAULT_SPEC = Path("~/tune-orchestrator/examples/cluster_digits.yaml").expanduser()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help=f"experiment YAML (default: {DEFAULT_SPEC})")
    parser.add_argument("--address", help="Ray cluster address; overrides the spec's cluster.address")
    parser.add_argument("--resume", action="store_true", help="continue the run in storage_path/name")
    args = parser.parse_args(argv)

    from orchestrator.run import run
    from orchestrator.spec import SpecError, load_experiment

    try:
        experiment = load_experiment(args.spec)
        if args.address:
            experiment.cluster = dataclasses.replace(experiment.cluster, address=args.address)
        result = run(experiment, resume=args.resume)
    except SpecError as error:  # one line naming the field and the fix, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(result.pareto.to_string())
    print(f"Results in {result.experiment_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
