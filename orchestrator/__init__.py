"""Compose searchers, schedulers and cluster settings into experiments; run them; report Pareto fronts."""
