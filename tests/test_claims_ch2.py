"""What chapter 2's prose says the reader sees, asserted at the chapter's own CPU sizes.

Each test reads the sizes from the chapter's preset cell (``chapter_preset("ch2")``) and calls
the package functions the chapter's cells call. Tolerances come from the spread measured over
20–30 seeds (``jax.random.key(1000 + seed)``), written beside each assertion. The Euler identity
(printed gap 0 up to rounding) is asserted in ``tests/test_rmt.py``; the exact formulas
(Marchenko–Pastur density, length map, relu_norm_variance) are unit-tested there too.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import chapter_preset
from mini_adv import data, nets, rmt, stats

S = chapter_preset("ch2")


def test_random_vectors_at_the_largest_d_are_within_six_degrees_and_seven_percent(fresh_key):
    """§2.2: "every sampled pair is within six degrees of orthogonal and every length within 7 %"
    (30 seeds at d = 3000, 10 000 pairs: largest angle 3.6°–4.6°, largest |‖g‖/√d − 1| 0.044–0.059;
    d·Var(cos) 0.97–1.03 and √(2d)·sd 0.98–1.01)."""
    d = S["vec_dims"][-1]
    cos, norm = rmt.cosines_and_norms(fresh_key, d, S["vec_pairs"])
    assert math.degrees(math.asin(float(jnp.abs(cos).max()))) < 6
    assert float(jnp.abs(norm - 1).max()) < 0.07
    assert d * float(jnp.var(cos)) == pytest.approx(1, abs=0.08)
    assert math.sqrt(2 * d) * float(jnp.std(norm)) == pytest.approx(1, abs=0.06)


def test_no_singular_value_leaves_the_band_by_more_than_five_hundredths(fresh_key):
    """§2.3: singular values of G/√d (h/d = 1/4) stay in [0.5, 1.5] up to 0.05 (30 seeds:
    smallest 0.480–0.504, largest 1.498–1.526)."""
    d = S["mp_n"]
    h = int(0.25 * d)
    sv = np.asarray(rmt.gaussian_singular_values(fresh_key, h, d, S["mp_draws"])) / math.sqrt(d)
    assert sv.min() > 0.45 and sv.max() < 1.55


def test_he_relu_norms_median_sd_slope_and_length_map(fresh_key):
    """§2.4 figure: (a) at the smallest width the median of q_L/q_0 is well below 1 (30 seeds:
    0.17–0.38); (b) the sd of q_L/q_0 has a fitted slope in [−0.85, −0.3] (−0.77 to −0.39) and is
    within 35 % of the exact formula at the largest width (ratio 0.72–1.22); (c) every variant's
    mean is within 10 % of the length map (largest gap 0.018–0.071)."""
    L, N, W = S["norm_depth"], S["n_networks"], S["norm_widths"]
    q = {w: np.asarray(rmt.sample_layer_norms(jax.random.fold_in(fresh_key, w), [w] * (L + 1),
                                              n_networks=N)[:, 0, -1]) ** 2 for w in W}
    assert np.median(q[W[0]]) < 0.6
    sd = np.array([q[w].std() for w in W])
    pred = np.array([math.sqrt(rmt.relu_norm_variance([w] * L)) for w in W])
    slope, _ = stats.fit_power_law(np.array(W), sd)
    assert -0.85 < slope < -0.3
    assert 0.65 < sd[-1] / pred[-1] < 1.35
    for i, (act, scale) in enumerate([("relu", "he"), ("relu", "lecun"), ("relu", 1.5),
                                      ("tanh", "lecun")]):
        rho = np.asarray(rmt.sample_layer_norms(jax.random.fold_in(fresh_key, 30 + i), [W[-1]] * (L + 1),
                                                n_networks=N, activation=act, weight_scale=scale)[:, 0])
        gap = np.max(np.abs(rho.mean(0) / np.asarray(rmt.length_map(act, scale, L)) - 1))
        assert gap < 0.1, (act, scale)


def test_cosine_scaling_constant_slope_and_gradient_norm(fresh_key):
    """§2.5 figure: constant at slope −1/2 within 10 % of √(2/π) (20 seeds: 0.780–0.823),
    slope within 0.08 of −1/2 (−0.526 to −0.491), mean ‖∇f‖ within 20 % of 1 at every d
    (0.88–1.004; the chapter's own key gives 0.85 at d = 16), CV slope close to −1/2 (−0.531 to −0.503)."""
    out = rmt.cosine_scaling(fresh_key, S["grad_dims"], hidden=(1.0, 1.0),
                             n_networks=S["n_networks"], n_inputs=S["grad_inputs"])
    assert out.constant_half == pytest.approx(math.sqrt(2 / math.pi), rel=0.1)
    assert abs(out.slope + 0.5) < 0.08
    assert np.all(np.abs(np.asarray(out.grad_norm_mean) - 1) < 0.2)
    cv_slope, _ = stats.fit_power_law(np.asarray(out.d), np.asarray(out.grad_norm_cv))
    assert abs(cv_slope + 0.5) < 0.1


def test_ball_switching_law_worst_norm_ratio_and_mean_cos(fresh_key):
    """§2.6: the switching fraction is within 10 % of arctan(r/√d)/π (20 seeds: measured/law
    0.956–1.005); every mean cos is above 0.75 and grows with d (0.78–0.80, 0.89, 0.94–0.95);
    the worst norm ratio grows with d, is below 1/2 at the smallest d (0.24–0.35) and above
    0.7 at the largest (0.86–0.90)."""
    N, B, R = S["n_networks"], S["ball_inputs"], S["ball_rays"]
    worst, mcos = [], []
    for d in S["ball_dims"]:
        k1, k2, k3 = jax.random.split(jax.random.fold_in(fresh_key, 50 + d), 3)
        p = nets.init_params(k1, [d, d, d], n=N)
        X = data.sphere(k2, N * B, d).reshape(N, B, d)
        U = data.sphere(k3, N * B * R, d, radius=1.0).reshape(N, B, R, d)
        ball = rmt.gradient_on_ball(p, X, U, 2.0)
        frac = float(ball.pattern_change.mean())
        assert frac == pytest.approx(rmt.switching_fraction(d, 2.0), rel=0.1)
        worst.append(float(ball.norm_ratio.min()))
        mcos.append(float(ball.cos.mean()))
    assert min(mcos) > 0.75 and np.all(np.diff(mcos) > 0)
    assert np.all(np.diff(worst) > 0) and worst[0] < 0.5 and worst[-1] > 0.7


def test_distortion_follows_marchenko_pastur_from_one_fifth_on(fresh_key):
    """§2.6 figure: from h/h' = 0.2 on, the measured worst distortion is within 15 % of
    2√(h/h') + h/h' (30 seeds: ratios 0.89–1.03, 0.94–1.02, 0.95–1.02); the union bound says
    nothing above 1/(8 ln 2) ≈ 0.18."""
    hp = S["iso_n"]
    hs = sorted({max(1, round(q * hp)) for q in S["iso_ratios"]})
    for h, sv in zip(hs, rmt.singular_values_by_rows(fresh_key, hs, hp, 2)):
        sv = sv / math.sqrt(hp)
        worst = float(jnp.maximum(sv[:, 0] ** 2 - 1, 1 - sv[:, -1] ** 2).mean())
        if h / hp >= 0.2:
            assert worst == pytest.approx(2 * math.sqrt(h / hp) + h / hp, rel=0.15)
    assert rmt.union_bound_epsilon(round(0.2 * hp), hp) > 1 > rmt.union_bound_epsilon(round(0.1 * hp), hp)


def test_the_edges_solution_prints_zero_for_every_h():
    """Solution of ex-ch2-edges: with t = 2 and key 3, no singular value leaves the band."""
    for h in (50, 200, 400):
        sv = rmt.gaussian_singular_values(jax.random.key(3), h, 400, 5)
        lo, hi = math.sqrt(400) - math.sqrt(h) - 2, math.sqrt(400) + math.sqrt(h) + 2
        assert float(jnp.mean((sv < lo) | (sv > hi))) == 0.0


def test_the_bottleneck_solution_ranges():
    """Solution of ex-ch2-bottleneck, with its keys (jax.random.key(d)), 64 networks × 8 inputs:
    CV above 0.5 with the bottleneck (measured 0.61, 0.72, 0.64 at d = 64, 256, 1024), below
    0.15 without it by d = 256 (0.21, 0.11, 0.055), a few percent dead pairs with it (4–6 %),
    none without. d = 1024 without the bottleneck is left out here (the slowest case)."""
    for d in (64, 256, 1024):
        s = rmt.sample_gradient_stats(jax.random.key(d), d, hidden=(1.0, 4 / d), n_networks=64,
                                      n_inputs=8).summary()
        assert s["grad_norm_cv"] > 0.5 and 0 < s["dead"] < 0.15
    for d in (64, 256):
        s = rmt.sample_gradient_stats(jax.random.key(d), d, hidden=(1.0, 1.0), n_networks=64,
                                      n_inputs=8).summary()
        assert s["dead"] == 0 and (d < 256 or s["grad_norm_cv"] < 0.15)


def test_arc_cosine_correlations_of_the_exercise():
    """Solution of ex-ch2-arccos: κ(π/2) = 1/π and κ(κ⁻¹…) ≈ 0.49 after two layers, and the
    formula against a Monte Carlo estimate."""
    kappa = lambda t: (math.sin(t) + (math.pi - t) * math.cos(t)) / math.pi  # noqa: E731
    assert kappa(math.pi / 2) == pytest.approx(1 / math.pi)
    assert kappa(math.acos(1 / math.pi)) == pytest.approx(0.49, abs=0.005)
    w = np.asarray(jax.random.normal(jax.random.key(11), (400_000, 2)))
    t = 1.0
    mc = np.mean(np.maximum(w[:, 0], 0) * np.maximum(math.cos(t) * w[:, 0] + math.sin(t) * w[:, 1], 0))
    assert mc == pytest.approx(kappa(t) / 2, abs=0.003)  # Monte Carlo sd ≈ 0.0008
