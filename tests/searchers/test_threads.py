"""Tests for searchers._threads.torch_thread_limit."""

from __future__ import annotations

import torch

from searchers._threads import torch_thread_limit


def test_the_setting_is_restored_after_blocks_that_overlap_and_end_out_of_order():
    before = torch.get_num_threads()
    first, second = torch_thread_limit(1), torch_thread_limit(1)  # e.g. a worker thread and Tune's
    first.__enter__()
    second.__enter__()
    assert torch.get_num_threads() == 1
    first.__exit__(None, None, None)  # the first to start ends first: the other still runs capped
    assert torch.get_num_threads() == 1
    second.__exit__(None, None, None)
    assert torch.get_num_threads() == before


def test_none_changes_nothing():
    before = torch.get_num_threads()
    with torch_thread_limit(None):
        assert torch.get_num_threads() == before
