"""Tests of mp/divergences.py: KL and JS, discrete and from samples, and the GAN value."""

import math

import numpy as np
import pytest

from mp import divergences as dv


def _random_distribution(rng, n):
    p = rng.uniform(size=n)
    return p / p.sum()


def test_kl_discrete_by_hand_and_not_symmetric():
    p, q = [0.5, 0.5], [0.9, 0.1]
    # KL(p||q) = 0.5 ln(0.5/0.9) + 0.5 ln(0.5/0.1) = 0.5 ln(5/1.8) = 0.5 * 1.021651 = 0.510826
    assert dv.kl_divergence(p, q) == pytest.approx(0.5 * math.log(5 / 1.8))
    # KL(q||p) = 0.9 ln(1.8) + 0.1 ln(0.2) = 0.529008 - 0.160944 = 0.368064
    assert dv.kl_divergence(q, p) == pytest.approx(0.9 * math.log(1.8) + 0.1 * math.log(0.2))


def test_kl_zero_terms_and_infinity():
    # 0 log(0/q) = 0: p = [1, 0], q = [0.5, 0.5] gives 1 * ln(1/0.5) = ln 2.
    assert dv.kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2))
    # q = 0 where p > 0: infinite.
    assert dv.kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf


def test_kl_over_leading_axes_matches_a_loop():
    rng = np.random.default_rng(0)
    p = np.stack([_random_distribution(rng, 5) for _ in range(3)])
    q = np.stack([_random_distribution(rng, 5) for _ in range(3)])
    expected = [sum(pi * math.log(pi / qi) for pi, qi in zip(pr, qr)) for pr, qr in zip(p, q)]
    np.testing.assert_allclose(dv.kl_divergence(p, q), expected, rtol=1e-12)


def test_js_symmetric_bounded_and_zero_iff_equal():
    rng = np.random.default_rng(1)
    for _ in range(20):
        p, q = _random_distribution(rng, 6), _random_distribution(rng, 6)
        js = dv.js_divergence(p, q)
        assert js == pytest.approx(dv.js_divergence(q, p), rel=1e-12)
        assert 0.0 < js <= math.log(2)
        assert dv.js_divergence(p, p) == pytest.approx(0.0, abs=1e-15)
    # Disjoint supports reach the bound: m = [1/2, 1/2], KL(p||m) = KL(q||m) = ln 2.
    assert dv.js_divergence([1.0, 0.0], [0.0, 1.0]) == pytest.approx(math.log(2))
    # JS is finite where KL is not.
    assert math.isfinite(dv.js_divergence([0.5, 0.5], [1.0, 0.0]))


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="same shape"):
        dv.kl_divergence([0.5, 0.5], [1.0])
    with pytest.raises(ValueError, match="sum to 1"):
        dv.js_divergence([0.5, 0.6], [0.5, 0.5])
    with pytest.raises(ValueError, match="non-negative"):
        dv.kl_divergence([1.5, -0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="k must be"):
        dv.kl_divergence_knn(np.zeros(3), np.ones(3), k=3)


def test_gan_value_at_the_optimal_discriminator_is_minus_log4_plus_2js():
    # p_d = [1/2, 1/2], p_g = [1/4, 3/4]: D* = [ (1/2)/(3/4), (1/2)/(5/4) ] = [2/3, 2/5].
    p_d, p_g = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    d_star = dv.optimal_discriminator(p_d, p_g)
    np.testing.assert_allclose(d_star, [2 / 3, 2 / 5])
    # V = 0.5 ln(2/3) + 0.5 ln(2/5) + 0.25 ln(1/3) + 0.75 ln(3/5)
    #   = -0.202733 - 0.458145 - 0.274653 - 0.383119 = -1.318650
    v = (
        0.5 * math.log(2 / 3)
        + 0.5 * math.log(2 / 5)
        + 0.25 * math.log(1 / 3)
        + 0.75 * math.log(0.6)
    )
    assert dv.gan_value(p_d, p_g, d_star) == pytest.approx(v)
    # -log 4 + 2 JS: m = [3/8, 5/8], KL(p_d||m) = 0.032269, KL(p_g||m) = 0.035375,
    # JS = 0.033822, -1.386294 + 0.067644 = -1.318650.
    assert -math.log(4) + 2 * dv.js_divergence(p_d, p_g) == pytest.approx(v)


def test_optimal_discriminator_maximises_the_value():
    rng = np.random.default_rng(2)
    p_d, p_g = _random_distribution(rng, 8), _random_distribution(rng, 8)
    p_d[3], p_g[5] = 0.0, 0.0  # a point only one of them reaches
    p_d, p_g = p_d / p_d.sum(), p_g / p_g.sum()
    d_star = dv.optimal_discriminator(p_d, p_g)
    best = dv.gan_value(p_d, p_g, d_star)
    assert best == pytest.approx(-math.log(4) + 2 * dv.js_divergence(p_d, p_g))
    for _ in range(50):  # any other discriminator does worse
        d = np.clip(d_star + rng.normal(scale=0.05, size=8), 1e-6, 1 - 1e-6)
        assert dv.gan_value(p_d, p_g, d) < best
    # At p_g = p_d the discriminator is 1/2 everywhere and V = -log 4.
    np.testing.assert_allclose(dv.optimal_discriminator(p_d, p_d), 0.5)
    assert dv.gan_value(p_d, p_d, 0.5 * np.ones(8)) == pytest.approx(-math.log(4))


def test_knn_kl_of_two_gaussians_against_the_closed_form():
    # KL(N(m1, s1^2) || N(m2, s2^2)) = ln(s2/s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2.
    # m1=0, s1=1, m2=1, s2=2: ln 2 + (1 + 1)/8 - 1/2 = 0.693147 + 0.25 - 0.5 = 0.443147.
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 1.0, size=5000)
    y = rng.normal(1.0, 2.0, size=5000)
    assert dv.kl_divergence_knn(x, y) == pytest.approx(0.443147, abs=0.05)
    # 2-D: KL(N(0, I) || N(mu, I)) = |mu|^2 / 2 = 0.5 for mu = (1, 0).
    x2 = rng.normal(size=(5000, 2))
    y2 = rng.normal(size=(5000, 2)) + [1.0, 0.0]
    assert dv.kl_divergence_knn(x2, y2, k=5) == pytest.approx(0.5, abs=0.06)
    # Same distribution: near 0.
    assert dv.kl_divergence_knn(x2, rng.normal(size=(5000, 2))) == pytest.approx(0.0, abs=0.05)


def test_histogram_js_against_quadrature():
    # JS(N(0, 1) || N(1, 1)) by numerical integration on a fine grid.
    grid = np.linspace(-10.0, 11.0, 200001)
    dx = grid[1] - grid[0]
    p = np.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi)
    q = np.exp(-0.5 * (grid - 1) ** 2) / math.sqrt(2 * math.pi)
    m = (p + q) / 2
    reference = 0.5 * np.sum(p * np.log(p / m)) * dx + 0.5 * np.sum(q * np.log(q / m)) * dx
    rng = np.random.default_rng(4)
    x, y = rng.normal(0.0, 1.0, 50000), rng.normal(1.0, 1.0, 50000)
    got = dv.js_divergence_histogram(x, y, bins=40, value_range=[(-5.0, 6.0)])
    assert got == pytest.approx(reference, abs=0.01)
    assert dv.js_divergence_histogram(x, y) == pytest.approx(dv.js_divergence_histogram(y, x))


def test_histogram_estimate_needs_samples_inside_the_range():
    x = np.linspace(0.0, 1.0, 50)
    with pytest.raises(ValueError, match="no sample of y falls in value_range"):
        dv.js_divergence_histogram(x, x + 5.0, value_range=[(0.0, 1.0)])
