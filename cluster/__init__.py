"""Running trials on a Ray cluster: what each trial reserves and whether the nodes can hold it
(:mod:`cluster.resources`), which cluster to join and storage every node reaches
(:mod:`cluster.connect`), retries only for trials whose node was lost
(:mod:`cluster.fault_tolerance`), and the ``ray up`` / KubeRay configs in ``cluster/configs/``
(:mod:`cluster.configs`).

Never imports ``orchestrator``.
"""
