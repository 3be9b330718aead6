"""The calibration fit: a monotone map from raw rule score to measured precision."""

import numpy as np
from sklearn.isotonic import IsotonicRegression

from agent.perception.calibration import Outcome, fit_points, isotonic

EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def _outcomes(raw: float, right: int, n: int) -> list[Outcome]:
    return [Outcome("hand_sign", raw, index < right) for index in range(n)]


def test_fit_is_monotone_where_precision_falls_over_three_bins():
    # Smoothed bin precisions 0.667, 0.417, 0.167: one pass of pairwise averaging left
    # [0.542, 0.354, 0.354]; isotonic regression pools all three.
    outcomes = _outcomes(0.55, 7, 10) + _outcomes(0.65, 4, 10) + _outcomes(0.75, 1, 10)
    points = fit_points(outcomes, EDGES)
    values = [p for _, p in points]
    assert all(a <= b for a, b in zip(values, values[1:], strict=False)), points
    assert values == [0.417, 0.417, 0.417]


def test_isotonic_matches_scikit_learn():
    rng = np.random.default_rng(7)
    for _ in range(20):
        values = rng.random(8)
        weights = rng.integers(1, 20, 8).astype(float)
        expected = IsotonicRegression().fit_transform(np.arange(8), values, sample_weight=weights)
        assert np.allclose(isotonic(values, weights), expected)


def test_fit_keeps_a_rising_map():
    outcomes = _outcomes(0.55, 2, 10) + _outcomes(0.95, 9, 10)
    assert fit_points(outcomes, EDGES) == [[0.55, 0.25], [0.95, 0.833]]
