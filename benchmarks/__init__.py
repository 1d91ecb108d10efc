"""Benchmark harness: tabular/surrogate blackboxes and a simulated cluster with an event clock."""
