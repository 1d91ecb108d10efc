"""Tests for benchmarks.run_cache: keys cover every setting, the data and the source code."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest

from benchmarks import run_cache
from benchmarks.blackboxes import make_blackbox
from benchmarks.run_cache import RunCache, code_fingerprint
from tests.benchmarks.synthetic_tables import write_nmt_tables

PAIR = "qq-zz"


@pytest.fixture(scope="module")
def nmt(tmp_path_factory):
    # 20 rows, like the tables the tests below write, in place of the shared `nmt` fixture of conftest.py.
    return make_blackbox("nmthpo", write_nmt_tables(tmp_path_factory.mktemp("tables"), PAIR, rows=20), PAIR)


def _history() -> pd.DataFrame:
    history = pd.DataFrame({"bleu": [1.0, 2.0], "status": ["completed", "stopped"]})
    history.attrs.update(method="random", seed=0, wall_s=0.1, suggest_s=[0.002, 0.0005])
    return history


def test_store_then_load_round_trips_the_history_and_its_attrs(nmt, tmp_path):
    cache = RunCache(tmp_path / "cache")
    assert cache.load(nmt, "random", seed=0, budget=5, workers=2) is None
    path = cache.store(nmt, _history(), method="random", seed=0, budget=5, workers=2)
    assert path.is_file() and path.parent.name == PAIR and not list(path.parent.glob("*.tmp"))
    loaded = cache.load(nmt, "random", seed=0, budget=5, workers=2)
    pd.testing.assert_frame_equal(loaded, _history())
    assert loaded.attrs == {**_history().attrs, "from_cache": True}
    assert loaded.attrs["suggest_s"] == [0.002, 0.0005]


def test_an_entry_stored_without_suggest_times_still_loads(nmt, tmp_path):
    cache = RunCache(tmp_path)
    older = _history()
    del older.attrs["suggest_s"]  # cached before suggest calls were timed
    cache.store(nmt, older, method="random", seed=0, budget=5, workers=2)
    loaded = cache.load(nmt, "random", seed=0, budget=5, workers=2)
    assert "suggest_s" not in loaded.attrs and loaded.attrs["wall_s"] == 0.1


@pytest.mark.parametrize("change", [
    {"method": "tpe"}, {"seed": 1}, {"budget": 6}, {"workers": 3},
])
def test_any_other_setting_is_another_entry(nmt, tmp_path, change):
    cache = RunCache(tmp_path)
    settings = {"method": "random", "seed": 0, "budget": 5, "workers": 2}
    cache.store(nmt, _history(), **settings)
    assert cache.load(nmt, **{**settings, **change}) is None


def test_other_objectives_or_other_data_are_other_entries(nmt, tmp_path):
    cache = RunCache(tmp_path / "cache")
    cache.store(nmt, _history(), method="random", seed=0, budget=5, workers=2)
    other_objectives = make_blackbox("nmthpo", write_nmt_tables(tmp_path / "same", PAIR, rows=20), PAIR,
                                     ["bleu", "params"])
    same_data = make_blackbox("nmthpo", write_nmt_tables(tmp_path / "same2", PAIR, rows=20), PAIR)
    other_data = make_blackbox("nmthpo", write_nmt_tables(tmp_path / "other", PAIR, rows=20, seed=1), PAIR)
    assert cache.load(same_data, "random", seed=0, budget=5, workers=2) is not None  # keyed on content, not path
    assert cache.load(other_objectives, "random", seed=0, budget=5, workers=2) is None
    assert cache.load(other_data, "random", seed=0, budget=5, workers=2) is None


def test_a_source_change_makes_old_entries_unreachable(nmt, tmp_path, monkeypatch):
    cache = RunCache(tmp_path)
    cache.store(nmt, _history(), method="random", seed=0, budget=5, workers=2)
    assert len(code_fingerprint()) == 64
    monkeypatch.setattr(run_cache, "code_fingerprint", lambda: "edited")
    assert cache.load(nmt, "random", seed=0, budget=5, workers=2) is None


def test_unreadable_entries_count_as_missing(nmt, tmp_path):
    cache = RunCache(tmp_path)
    path = cache.path(nmt, "random", seed=0, budget=5, workers=2)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a pickle")
    assert cache.load(nmt, "random", seed=0, budget=5, workers=2) is None
    path.write_bytes(pickle.dumps({"not": "a frame"}))
    assert cache.load(nmt, "random", seed=0, budget=5, workers=2) is None


def test_a_file_where_the_folder_should_be_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is not a folder"):
        RunCache(tmp_path / "file")
