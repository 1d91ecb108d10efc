"""Tests for benchmarks.blackboxes.nmthpo: on the shared NMT tables and on small synthetic ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.blackboxes import Fidelity, NMTBlackbox, make_blackbox, select_objectives
from benchmarks.blackboxes.nmthpo import HYPERPARAMETERS, OBJECTIVES, _ColumnScaling, available_instances
from tests.benchmark_data import NMTHPO_DIR, NMTHPO_PAIRS, needs_nmthpo

each_pair = pytest.mark.parametrize("pair", NMTHPO_PAIRS or ["<no tables>"])
# Rows whose learning curve joins unambiguously, for the pairs shipped with the project.
EXPECTED_CURVE_MATCHES = {"zh-en": 112, "ru-en": 176, "ja-en": 150, "en-ja": 163}


def _read(pair: str, suffix: str) -> np.ndarray:
    # Parsed independently of the module (plain split) so the parsing itself is under test.
    lines = (NMTHPO_DIR / f"{pair}{suffix}").read_text().split("\n")
    return np.array([[float(x) for x in line.split()] for line in lines if line.strip()])


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a >= b) and np.any(a > b))


# ----------------------------------------------------------------------------------- shared data
@needs_nmthpo
@each_pair
def test_known_front_equals_published_fronts_file(data_dir, pair):
    box = NMTBlackbox(data_dir, pair)
    published = np.flatnonzero(_read(pair, ".fronts")[:, 0] == 1)
    assert box.known_pareto_indices() == published.tolist()
    assert len(published) > 0


@needs_nmthpo
@each_pair
@pytest.mark.parametrize("objectives", [("bleu", "decode_time"), ("bleu", "ppl"), ("bleu", "params"),
                                        ("bleu", "gpu_memory"), ("ppl", "decode_time", "params")])
def test_known_front_matches_brute_force_including_ties(data_dir, pair, objectives):
    box = NMTBlackbox(data_dir, pair, objectives)
    signs = np.array([1.0 if box.objectives[name] == "max" else -1.0 for name in objectives])
    values = box.candidate_objectives().to_numpy() * signs
    expected = [i for i in range(len(values)) if not any(_dominates(v, values[i]) for v in values)]
    assert box.known_pareto_indices() == expected
    # An exact tie of a Pareto vector is itself Pareto-optimal (zh-en has such ties).
    for i in expected:
        twins = np.flatnonzero(np.all(values == values[i], axis=1))
        assert set(twins) <= set(expected)


@needs_nmthpo
@each_pair
def test_columns_are_parsed_by_name(data_dir, pair):
    hyps, evals = _read(pair, ".hyps"), _read(pair, ".evals")
    box = NMTBlackbox(data_dir, pair, ["bleu", "decode_time", "ppl", "params"])
    assert list(box.candidates().columns) == list(HYPERPARAMETERS)
    np.testing.assert_allclose(box.candidates().to_numpy(dtype=float), hyps)
    for i in (0, len(evals) // 2, len(evals) - 1):
        result = box.evaluate_candidate(i)
        assert result == {"bleu": evals[i, 0], "decode_time": evals[i, 1], "ppl": evals[i, 2],
                          "params": evals[i, 5], "cost": evals[i, 3]}


@needs_nmthpo
@each_pair
def test_gpu_memory_objective_drops_unmeasured_rows(data_dir, pair):
    evals = _read(pair, ".evals")
    measured = np.flatnonzero(evals[:, 4] != 0)
    box = NMTBlackbox(data_dir, pair, ["bleu", "gpu_memory"])
    assert len(box.candidates()) == len(measured)
    np.testing.assert_array_equal(box.table_rows, measured)
    assert (box.candidate_objectives()["gpu_memory"] > 0).all()
    np.testing.assert_allclose(box.candidates().to_numpy(dtype=float), _read(pair, ".hyps")[measured])
    # Without the objective nothing is dropped.
    assert len(NMTBlackbox(data_dir, pair, ["bleu", "params"]).candidates()) == len(evals)


@needs_nmthpo
def test_zh_en_has_one_unmeasured_gpu_memory_row(data_dir):
    if "zh-en" not in NMTHPO_PAIRS:
        pytest.skip("zh-en tables absent")
    assert len(NMTBlackbox(data_dir, "zh-en", ["bleu", "gpu_memory"]).candidates()) == 117


@needs_nmthpo
@each_pair
def test_learning_curves_join(data_dir, pair):
    box = NMTBlackbox(data_dir, pair)
    evals = box.evaluations()
    matched = [i for i in range(len(evals)) if box.curve_length(i) is not None]
    print(f"{pair}: {len(matched)}/{len(evals)} rows joined to a learning curve")
    if pair in EXPECTED_CURVE_MATCHES:
        assert len(matched) == EXPECTED_CURVE_MATCHES[pair]
    assert matched, "no learning curve joined"
    for i in matched:
        curve = box.learning_curve(i)
        assert [p["checkpoint"] for p in curve] == list(range(1, len(curve) + 1))
        assert curve[-1]["best_ppl"] == pytest.approx(evals.at[i, "dev_ppl"], abs=1e-6)
        assert curve[-1]["cost"] == pytest.approx(evals.at[i, "num_updates"])
        assert min(p["ppl"] for p in curve) == pytest.approx(evals.at[i, "dev_ppl"], abs=1e-6)
    assert box.fidelity.max == max(box.curve_length(i) for i in matched)


@needs_nmthpo
@each_pair
def test_intermediate_fidelity_reports_only_perplexity(data_dir, pair):
    box = NMTBlackbox(data_dir, pair)
    index = next(i for i in range(len(box.candidates())) if (box.curve_length(i) or 0) >= 3)
    length, curve = box.curve_length(index), box.learning_curve(index)
    updates = box.evaluations().at[index, "num_updates"]
    partial = box.evaluate_candidate(index, 2)
    assert partial == {"ppl": curve[1]["best_ppl"], "cost": pytest.approx(updates * 2 / length)}
    assert box.evaluate_candidate(index, 1)["cost"] < partial["cost"]
    final = box.evaluate_candidate(index)
    assert box.evaluate_candidate(index, length) == final == box.evaluate_candidate(index, box.fidelity.max)
    assert final["cost"] == updates and set(final) == {"bleu", "decode_time", "ppl", "cost"}
    assert box.full_fidelity(index) == length


@needs_nmthpo
def test_rows_without_curve_answer_every_fidelity_in_full(data_dir):
    found = [(box, i) for box in (NMTBlackbox(data_dir, p) for p in NMTHPO_PAIRS)
             for i in range(len(box.candidates())) if box.curve_length(i) is None]
    if not found:
        pytest.skip("every row of every pair has a learning curve")
    box, index = found[0]
    assert box.learning_curve(index) is None
    assert box.evaluate_candidate(index, 1) == box.evaluate_candidate(index)
    assert box.full_fidelity(index) == box.fidelity.min


@needs_nmthpo
@each_pair
def test_features_reproduce_hyps_scaled_and_features_of(data_dir, pair):
    box = NMTBlackbox(data_dir, pair)
    features = box.candidate_features()
    np.testing.assert_allclose(features, _read(pair, ".hyps_scaled"), atol=1e-3)
    assert features.min() >= 0 and features.max() <= 1
    for i, row in box.candidates().iterrows():
        np.testing.assert_array_equal(box.features_of(row.to_dict()), features[i])


@needs_nmthpo
@each_pair
def test_search_space_and_config_lookup(data_dir, pair):
    box = NMTBlackbox(data_dir, pair)
    space = box.search_space()
    candidates = box.candidates()
    assert list(space) == list(HYPERPARAMETERS)
    for name, domain in space.items():
        assert domain.categories == sorted(candidates[name].unique().tolist())
    row = candidates.iloc[5].to_dict()
    assert box.candidate_index_of(row) == 5
    assert box.evaluate(row) == box.evaluate_candidate(5)
    sampled = {name: domain.sample() for name, domain in space.items()}
    assert 0 <= box.candidate_index_of(sampled) < len(candidates)
    assert box.features_of(sampled).shape == (len(HYPERPARAMETERS),)


@needs_nmthpo
def test_make_blackbox_builds_nmt_from_the_shared_folder(data_dir):
    box = make_blackbox("nmthpo", data_dir, NMTHPO_PAIRS[0], ["bleu", "params"])
    assert isinstance(box, NMTBlackbox) and box.name == "nmthpo" and box.instance == NMTHPO_PAIRS[0]
    assert box.objectives == {"bleu": "max", "params": "min"}
    from_subfolder = make_blackbox("nmthpo", data_dir / "nmthpo", NMTHPO_PAIRS[0])
    assert from_subfolder.objectives == {"bleu": "max", "decode_time": "min"}


# ----------------------------------------------------------------------------------- synthetic
def _write_pair(directory: Path, pair: str, hyps, scaled, evals, fronts, curves=None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for suffix, rows in ((".hyps", hyps), (".hyps_scaled", scaled), (".evals", evals)):
        (directory / f"{pair}{suffix}").write_text("\n".join("\t".join(str(x) for x in r) for r in rows) + "\n")
    (directory / f"{pair}.fronts").write_text("\n".join(str(x) for x in fronts) + "\n")
    if curves is not None:
        (directory / "learning_curves.json").write_text(json.dumps(curves))


@pytest.fixture
def synthetic(tmp_path):
    hyps = [[1000, 1, 256, 1024, 8, 0.001], [4000, 2, 512, 2048, 16, 0.0003],
            [32000, 6, 1024, 1024, 8, 0.0006], [2000, 4, 256, 2048, 16, 0.001]]
    # bpe on a log2 scale and num_layers linear, as in the published sw-en table.
    scaled = [[0.0, 0.0, 0.0, 0.0, 0.0, 1.0], [0.4, 0.2, 0.5, 1.0, 1.0, 0.0],
              [1.0, 1.0, 1.0, 0.0, 0.0, 0.429], [0.2, 0.6, 0.0, 1.0, 1.0, 1.0]]
    evals = [[20.0, 100.0, 9.5, 4000, 0, 1e6], [25.0, 300.0, 8.0, 6000, 900, 3e6],
             [22.0, 100.0, 9.0, 8000, 800, 2e6], [18.0, 400.0, 9.0, 2000, 700, 1e6]]
    curves = [
        {"dataset_name": "corpus-xx-yy", "perplexity_curve": [20.0, 9.5], "perplexity_optimal": 9.5},
        {"dataset_name": "corpus-xx-yy", "perplexity_curve": [30.0, 12.0, 8.0], "perplexity_optimal": 8.0},
        # Two different curves with the same optimum: rows 2 and 3 are ambiguous.
        {"dataset_name": "corpus-xx-yy", "perplexity_curve": [15.0, 9.0], "perplexity_optimal": 9.0},
        {"dataset_name": "corpus-xx-yy", "perplexity_curve": [16.0, 9.0, 9.1], "perplexity_optimal": 9.0},
        # Another pair's record with a matching optimum must be ignored.
        {"dataset_name": "corpus-zz-yy", "perplexity_curve": [99.0, 9.5, 9.6], "perplexity_optimal": 9.5},
        {"dataset_name": "corpus-xx-yyy", "perplexity_curve": [9.5], "perplexity_optimal": 9.5},
    ]
    _write_pair(tmp_path / "nmthpo", "xx-yy", hyps, scaled, evals, [0, 1, 1, 0], curves)
    return tmp_path


def test_synthetic_pair_is_read_without_any_pair_specific_knowledge(synthetic):
    assert available_instances(synthetic) == ["xx-yy"] == available_instances(synthetic / "nmthpo")
    box = NMTBlackbox(synthetic, "xx-yy")
    assert box.known_pareto_indices() == [1, 2]  # row 2 dominates row 0 (tie on time), row 3 is last
    assert [s.kind for s in box._scalings] == ["log", "linear", "log", "linear", "linear", "linear"]
    np.testing.assert_allclose(box.candidate_features()[:, 0], [0.0, 0.4, 1.0, 0.2])
    assert [box.curve_length(i) for i in range(4)] == [2, 3, None, None]
    assert box.fidelity == Fidelity("checkpoint", 1, 3, "epoch", [1, 2, 3])
    assert box.evaluate_candidate(1, 1) == {"ppl": 30.0, "cost": 2000.0}
    assert box.evaluate_candidate(1, 2) == {"ppl": 12.0, "cost": 4000.0}
    assert box.evaluate_candidate(0, 3)["cost"] == 4000.0  # already stopped early at checkpoint 2
    assert box.objective_bounds() == {"bleu": (18.0, 25.0), "decode_time": (100.0, 400.0)}


def test_synthetic_pair_without_learning_curves_has_no_fidelity(tmp_path, synthetic):
    directory = tmp_path / "plain"
    directory.mkdir()
    for path in (synthetic / "nmthpo").glob("xx-yy.*"):
        (directory / path.name).write_text(path.read_text())
    box = NMTBlackbox(directory, "xx-yy")
    assert box.fidelity is None and box.full_fidelity(0) is None
    assert box.evaluate_candidate(0, 5) == box.evaluate_candidate(0)


def test_unknown_pair_and_objective_and_misaligned_files_are_rejected(synthetic):
    with pytest.raises(ValueError, match="instance='zz-yy'.*available: \\['xx-yy'\\]"):
        NMTBlackbox(synthetic, "zz-yy")
    with pytest.raises(ValueError, match="objective 'accuracy' is not available"):
        NMTBlackbox(synthetic, "xx-yy", ["bleu", "accuracy"])
    with pytest.raises(ValueError, match="mode of objective 'bleu': got 'up'"):
        NMTBlackbox(synthetic, "xx-yy", {"bleu": "up"})
    (synthetic / "nmthpo" / "xx-yy.fronts").write_text("1\n0\n")
    with pytest.raises(ValueError, match="not row-aligned"):
        NMTBlackbox(synthetic, "xx-yy")


def test_bad_indices_and_fidelities_are_rejected(synthetic):
    box = NMTBlackbox(synthetic, "xx-yy")
    for index in (-1, 4, 1.5):
        with pytest.raises(IndexError, match="candidate index"):
            box.evaluate_candidate(index)
    for fidelity in (0, 4, 1.5):
        with pytest.raises(ValueError, match="fidelity="):
            box.evaluate_candidate(0, fidelity)
    with pytest.raises(KeyError, match="missing hyperparameters"):
        box.features_of({"bpe_symbols": 1000})


def test_column_scaling_detects_linear_log_and_falls_back_to_interpolation():
    values = np.array([256.0, 512.0, 1024.0])
    assert _ColumnScaling(values, np.array([0.0, 1 / 3, 1.0])).kind == "linear"
    log = _ColumnScaling(values, np.array([0.0, 0.5, 1.0]))
    assert log.kind == "log"
    np.testing.assert_allclose(log(np.array([362.0387, 2048.0, 128.0])), [0.25, 1.0, 0.0], atol=1e-6)
    odd = _ColumnScaling(values, np.array([0.0, 0.9, 1.0]))
    assert odd.kind == "interpolated"
    np.testing.assert_allclose(odd(values), [0.0, 0.9, 1.0])


def test_select_objectives_and_fidelity_validation():
    known = {name: mode for name, (_, mode) in OBJECTIVES.items()}
    assert select_objectives(None, known, ["ppl"]) == {"ppl": "min"}
    assert list(select_objectives("params,bleu", known, [])) == ["params", "bleu"]
    for bad, message in (([], "objectives: got none"), (["bleu", "bleu"], "more than once")):
        with pytest.raises(ValueError, match=message):
            select_objectives(bad, known, [])
    with pytest.raises(ValueError, match="kind='steps'"):
        Fidelity("t", 1, 2, "steps", [1])
    with pytest.raises(ValueError, match="min=3"):
        Fidelity("t", 3, 2, "epoch", [2])
    with pytest.raises(ValueError, match="increasing"):
        Fidelity("t", 1, 3, "epoch", [2, 1])
    with pytest.raises(ValueError, match="at least one step"):
        Fidelity("t", 1, 3, "epoch", [])
    fraction = Fidelity("trainsize", 0.1, 1.0, "fraction", [0.25, 0.5, 1.0])
    assert fraction.validate(0.3) == 0.3 and fraction.clip(2) == 1.0


def test_make_blackbox_rejects_unknown_benchmarks(synthetic):
    for name in ("nmt", "yahpo:", "lcbench"):
        with pytest.raises(ValueError, match="is unknown"):
            make_blackbox(name, synthetic, "xx-yy")
