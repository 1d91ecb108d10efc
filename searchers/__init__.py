"""Ray Tune ``Searcher``s for multi-objective and multi-fidelity hyperparameter optimisation.

Each searcher plugs into a plain ``ray.tune.Tuner`` through
``tune.TuneConfig(search_alg=...)``; none of them imports ``orchestrator``.
"""

from searchers.ax_multi_objective import AxMultiObjectiveSearch
from searchers.fabolas import FabolasSearch
from searchers.pool_multi_objective import PoolMultiObjectiveSearch
from searchers.random_search import RandomSearch
from searchers.scalarized import ScalarizedSearch

__all__ = ["AxMultiObjectiveSearch", "FabolasSearch", "PoolMultiObjectiveSearch", "RandomSearch", "ScalarizedSearch"]
