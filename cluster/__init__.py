"""Placing GPU trials on a Ray cluster: resource requests checked against what the cluster has.

Never imports ``orchestrator``.
"""
