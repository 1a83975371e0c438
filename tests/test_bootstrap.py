"""The paired bootstrap interval of an mPCK difference (metrics/bootstrap.py)."""

import numpy as np
import pandas as pd
import pytest
from benchmark_modules import load_benchmark

from talking_points.pipeline.metrics.bootstrap import mpck_difference, paired_difference, point_mpck
from talking_points.pipeline.metrics.pck import mpck


def test_point_mpck_is_each_points_share_of_the_metric():
    d = np.array([0.05, 0.15, 0.25, 0.1, 0.2])
    assert point_mpck(d).tolist() == [100, 50, 0, 50, 0]  # strictly below the threshold, as pck
    rng = np.random.default_rng(0)
    d = rng.uniform(0, 0.4, 500)
    assert point_mpck(d).mean() == pytest.approx(100 * mpck(d))


def test_a_clear_gain_excludes_zero_and_no_difference_is_exactly_zero():
    rng = np.random.default_rng(1)
    worse = rng.uniform(0, 0.4, 400)
    better = worse * 0.5  # every point at least as close
    d = mpck_difference(better, worse)
    assert d.diff == pytest.approx(100 * (mpck(better) - mpck(worse)))
    assert d.low > 0 and d.clear and d.low <= d.diff <= d.high and d.n == 400
    same = mpck_difference(worse, worse)
    assert (same.diff, same.low, same.high, same.clear) == (0.0, 0.0, 0.0, False)


def test_the_interval_narrows_with_more_points_and_is_seeded():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0, 0.35, 4000), rng.uniform(0, 0.35, 4000)
    small, large = mpck_difference(a[:200], b[:200]), mpck_difference(a, b)
    assert (large.high - large.low) < 0.5 * (small.high - small.low)  # ~1/sqrt(20) of the width
    assert mpck_difference(a, b, seed=3) == mpck_difference(a, b, seed=3)


def test_pairing_removes_the_points_shared_difficulty():
    """Two methods that miss the same hard points: the paired interval is far narrower than the spread of
    either method's own mPCK would suggest, and it holds the true (zero) difference."""
    rng = np.random.default_rng(4)
    difficulty = rng.uniform(0, 0.35, 1000)
    a = difficulty + rng.normal(0, 0.005, 1000)
    b = difficulty + rng.normal(0, 0.005, 1000)
    d = mpck_difference(a, b)
    assert d.low <= 0 <= d.high and d.high - d.low < 3  # unpaired, each mPCK alone varies by ~±3 points


def test_intervals_hold_a_zero_difference_about_as_often_as_they_claim():
    rng = np.random.default_rng(5)
    held = 0
    for k in range(40):
        a, b = rng.uniform(0, 0.35, 300), rng.uniform(0, 0.35, 300)  # the same method, two draws
        d = mpck_difference(a, b, n_resamples=500, seed=k)
        held += d.low <= 0 <= d.high
    assert held >= 34  # 95% intervals: ~38 of 40; far fewer would mean the interval is too narrow


def test_tables_are_paired_by_point_and_bad_input_is_named():
    a = pd.DataFrame({"kp_id": ["p1", "p2", "p3"], "dist": [0.05, 0.3, 0.15]})
    b = pd.DataFrame({"kp_id": ["p3", "p1", "p2", "p4"], "dist": [0.15, 0.3, 0.3, 0.0]})
    d = paired_difference(a, b, n_resamples=200)
    assert d.n == 3 and d.diff == pytest.approx(100 / 3)  # only p1 differs: 100 vs 0
    with pytest.raises(ValueError, match="scores point 'p1' twice"):
        paired_difference(pd.concat([a, a.iloc[:1]]), b)
    with pytest.raises(ValueError, match="share no point"):
        paired_difference(a, b.assign(kp_id=["x", "y", "z", "w"]))
    with pytest.raises(ValueError, match="two 1-D arrays of one length"):
        mpck_difference(np.zeros(3), np.zeros(4))


def test_cross_judge_pairs_the_same_keypoints_and_refuses_others():
    paired_rows = load_benchmark("cross_judge").paired_rows
    ours = pd.DataFrame({"kp_id": ["a", "b", "c", "a"], "method": ["zero_shot"] * 3 + ["gt"],
                         "x_norm": [0.1, 0.2, 0.3, 0.1], "y_norm": [0.5, 0.5, 0.5, 0.5], "text": ["x"] * 4})
    other = ours.iloc[[2, 0, 1]].assign(text=["c2", "a2", "b2"])
    mine, theirs = paired_rows(ours, other, "zero_shot")
    assert list(theirs.index) == list(mine.index) == ["a", "b", "c"]
    assert list(theirs["text"]) == ["a2", "b2", "c2"]
    with pytest.raises(ValueError, match="different keypoints"):
        paired_rows(ours, other.iloc[:2], "zero_shot")
    with pytest.raises(ValueError, match="moved by up to 0.0500"):
        paired_rows(ours, other.assign(x_norm=other["x_norm"] + 0.05), "zero_shot")


def test_grpo_metrics_take_the_gain_and_its_interval_from_one_paired_difference():
    from talking_points.pipeline.rl.evaluation import grpo_gain, method_metrics, method_table

    rng = np.random.default_rng(0)
    n = 300
    base = pd.DataFrame({"kp_id": [f"k{i}" for i in range(n)], "image_id": "i", "category": "dog", "part": "leg",
                         "x_norm": 0.5, "y_norm": 0.5, "text": "the dog's leg"})
    preds = pd.concat([base.assign(method="zero_shot", dist=rng.uniform(0, 0.3, n)),
                       base.assign(method="grpo", dist=rng.uniform(0, 0.25, n)),
                       base.assign(method="gt", dist=rng.uniform(0, 0.2, n))], ignore_index=True)
    gain = grpo_gain(preds)
    table = method_table(preds)
    out = method_metrics(table, 80, gain)
    assert out["gain"] == round(gain.diff, 2) and out["gain_ci"] == [round(gain.low, 2), round(gain.high, 2)]
    by = table.set_index("method")["mPCK"]
    assert out["gain"] == pytest.approx(by["grpo"] - by["zero_shot"], abs=1e-9 + 0.005)
    assert out["gain_ci"][0] <= out["gain"] <= out["gain_ci"][1]
    assert grpo_gain(preds[preds["method"] != "grpo"]) is None
    assert "gain" not in method_metrics(table, 80, None) and "gain_ci" not in method_metrics(table, 80, None)
