"""Temporarily cap PyTorch's intra-op threads while a searcher fits its models."""

from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def torch_thread_limit(threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``; ``None`` changes nothing.

    Model fits in a searcher are small (tens to hundreds of points) and run in the Tune driver
    beside the trials; with several threads each they fight the trials for the same cores.
    """
    if threads is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
