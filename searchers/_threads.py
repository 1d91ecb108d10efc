"""Temporarily cap PyTorch's intra-op threads while a searcher fits its models."""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

_lock = threading.Lock()
_active = 0  # blocks inside torch_thread_limit now, over all threads
_previous: int | None = None  # PyTorch's setting before the first of them


@contextlib.contextmanager
def torch_thread_limit(threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``; ``None`` changes nothing.

    Model fits in a searcher are small (tens to hundreds of points) and run in the Tune driver
    beside the trials; with several threads each they fight the trials for the same cores.

    The setting is process-wide, and a searcher's background worker and Tune's thread may be
    inside such a block at once: the setting before the first block is restored when the last
    one ends, whichever order they end in.
    """
    global _active, _previous
    if threads is None:
        yield
        return
    import torch

    with _lock:
        if _active == 0:
            _previous = torch.get_num_threads()
        _active += 1
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                torch.set_num_threads(_previous)
