"""The 95 % Wilson score interval against published values and an independent computation."""

from __future__ import annotations

from decimal import Decimal, getcontext

import pytest

from tracking.metrics import wilson_interval

# Newcombe RG (1998), "Two-sided confidence intervals for the single proportion: comparison of
# seven methods", Statistics in Medicine 17:857–872, Table II, method 3 (score interval without
# continuity correction, z = 1.96), to the 4 decimals printed there.
NEWCOMBE_1998 = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize(("successes", "n", "low", "high"), NEWCOMBE_1998)
def test_wilson_matches_newcombe_1998(successes, n, low, high):
    got_low, got_high = wilson_interval(successes, n)
    assert round(got_low, 4) == low
    assert round(got_high, 4) == high


def score_bounds(successes: int, n: int, z: str = "1.96") -> tuple[Decimal, Decimal]:
    """The interval as the inversion of the score test, computed at 50 digits: the p with
    (s/n − p)² = z² p (1 − p) / n are the roots of (n + z²) p² − (2s + z²) p + s²/n = 0."""
    getcontext().prec = 50
    s, size, z2 = Decimal(successes), Decimal(n), Decimal(z) ** 2
    a, b, c = size + z2, -(2 * s + z2), s * s / size
    root = (b * b - 4 * a * c).sqrt()
    return ((-b - root) / (2 * a), (-b + root) / (2 * a))


@pytest.mark.parametrize(
    ("successes", "n"),
    [(0, 10), (5, 10), (10, 10), (81, 263), (1, 1), (0, 1), (29, 30), (12, 12), (500, 1000)],
)
def test_wilson_equals_the_score_test_inversion(successes, n):
    low, high = wilson_interval(successes, n)
    exact_low, exact_high = score_bounds(successes, n)
    assert low == pytest.approx(float(exact_low), abs=1e-12)
    assert high == pytest.approx(float(exact_high), abs=1e-12)


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # (values of the closed form to 6 decimals, checked against score_bounds above)
        (0, 10, 0.0, 0.277540),
        (5, 10, 0.236590, 0.763410),
        (10, 10, 0.722460, 1.0),
    ],
)
def test_wilson_small_samples(successes, n, low, high):
    got = wilson_interval(successes, n)
    assert got == pytest.approx((low, high), abs=5e-7)


def test_a_lucky_streak_is_not_a_certainty():
    """10 wins of 12 reads as 83 %, but the interval reaches down to 55 %."""
    low, high = wilson_interval(10, 12)
    assert round(low, 3) == 0.552
    assert round(high, 3) == 0.953


def test_the_bounds_stay_within_0_and_1_and_contain_the_rate():
    for n in range(1, 60):
        for successes in range(n + 1):
            low, high = wilson_interval(successes, n)
            assert 0.0 <= low <= successes / n <= high <= 1.0


def test_no_observations_say_nothing():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_a_wider_z_gives_a_wider_interval():
    narrow, wide = wilson_interval(30, 60, z=1.0), wilson_interval(30, 60, z=2.576)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


@pytest.mark.parametrize(("successes", "n"), [(-1, 5), (6, 5), (0, -1)])
def test_impossible_counts_are_refused(successes, n):
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(successes, n)
