"""Benchmark blackboxes: tabular NMT lookup tables and YAHPO Gym surrogates behind one interface.

Example:
    >>> box = make_blackbox("nmthpo", "/work/shared/benchmarks", "zh-en")  # doctest: +SKIP
    >>> len(box.candidates()), box.known_pareto_indices()  # doctest: +SKIP
    (118, [74, 95, 105])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from benchmarks.blackboxes.base import Blackbox, Fidelity, select_objectives
from benchmarks.blackboxes.nmthpo import NMTBlackbox
from benchmarks.blackboxes.yahpo import YahpoBlackbox  # yahpo-gym itself is imported on first use

__all__ = ["Blackbox", "Fidelity", "NMTBlackbox", "YahpoBlackbox", "make_blackbox", "select_objectives"]


def make_blackbox(
    benchmark: str,
    data_dir: str | Path,
    instance: str,
    objectives: str | Sequence[str] | Mapping[str, str] | None = None,
) -> Blackbox:
    """Build a blackbox from its benchmark name: ``"nmthpo"`` or ``"yahpo:<scenario>"``.

    Args:
        benchmark: ``"nmthpo"`` or ``"yahpo:lcbench"``, ``"yahpo:rbv2_xgboost"``, ...
        data_dir: the shared benchmarks folder, or the benchmark's own sub-folder.
        instance: language pair (nmthpo) or dataset id (yahpo).
        objectives: objective names (or ``{name: mode}``); ``None`` for the benchmark's default.
    """
    if benchmark == "nmthpo":
        return NMTBlackbox(data_dir, instance, objectives)
    if benchmark.startswith("yahpo:") and benchmark[len("yahpo:"):]:
        return YahpoBlackbox(data_dir, benchmark[len("yahpo:"):], instance, objectives)
    raise ValueError(f"benchmark={benchmark!r} is unknown; use 'nmthpo' or 'yahpo:<scenario>' (e.g. 'yahpo:lcbench').")

