"""Chapter 2's random-matrix facts, asserted on fresh random draws (mini_adv.rmt)."""

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mini_adv import data, nets, rmt, stats

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


# --- random vectors -------------------------------------------------------------------------


def test_random_cosines_have_variance_one_over_d_and_norms_concentrate(fresh_key):
    for d in (10, 1000):
        cos, norm = rmt.cosines_and_norms(jax.random.fold_in(fresh_key, d), d, 20_000)
        # Var(cos) = 1/d exactly; the estimate from 20 000 pairs has relative s.e. ≤ 1.5 %
        assert abs(d * float(jnp.var(cos)) - 1) < 0.06, d * float(jnp.var(cos))
        assert abs(float(jnp.mean(cos))) < 4 / math.sqrt(20_000 * d)
    # sd(‖g‖/√d) ≈ 1/√(2d) at d = 1000
    assert abs(math.sqrt(2 * d) * float(jnp.std(norm)) - 1) < 0.05


# --- Marchenko–Pastur ------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.05, 0.25, 0.5, 1.0])
def test_mp_density_integrates_to_one(ratio):
    lo, hi = rmt.mp_edges(ratio)
    # Chebyshev substitution λ = lo + (hi − lo)(1 − cos θ)/2 removes the square-root endpoints
    theta = np.linspace(0, np.pi, 20_001)
    lam = lo + (hi - lo) * (1 - np.cos(theta)) / 2
    jac = (hi - lo) * np.sin(theta) / 2
    y = np.asarray(rmt.mp_density(lam, ratio), dtype=float) * jac
    total = float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(theta)))
    assert total == pytest.approx(1.0, abs=2e-3)
    # and the density vanishes outside [λ−, λ+]
    assert float(jnp.max(rmt.mp_density(jnp.array([lo - 0.01, hi + 0.01, 50.0]), ratio))) == 0.0


def test_mp_singular_density_is_the_quarter_circle_at_ratio_one():
    s = np.linspace(0.01, 1.99, 50)
    np.testing.assert_allclose(rmt.mp_singular_density(s, 1.0), np.sqrt(4 - s**2) / np.pi, rtol=1e-5)


@pytest.mark.parametrize("m,n", [(100, 1600), (400, 1600), (1600, 400)])
def test_sampled_extreme_singular_values_match_the_mp_edges(fresh_key, m, n):
    """Mean s_min and s_max of fresh Gaussian matrices at the edges σ(√max ± √min).

    Tolerance: 2.5 % of the matrix's scale σ√max(m, n). Finite-size shifts are O(max^{-2/3}):
    over 10 seeds the largest error was 1.2 %; a wrong edge formula (e.g. √min ± √max, or
    edges without σ) is off by 25 % or more.
    """
    sv = rmt.gaussian_singular_values(fresh_key, m, n, n_draws=4, std=2.0)
    assert sv.shape == (4, min(m, n))
    lo, hi = rmt.singular_value_edges(m, n, std=2.0)
    scale = 2.0 * math.sqrt(max(m, n))
    assert abs(float(sv[:, 0].mean()) - hi) < 0.025 * scale, (float(sv[:, 0].mean()), hi)
    assert abs(float(sv[:, -1].mean()) - lo) < 0.025 * scale, (float(sv[:, -1].mean()), lo)


def test_sampled_spectrum_follows_the_mp_distribution(fresh_key):
    """Kolmogorov distance between the empirical law of s/√n and the MP law below 0.02."""
    m, n, r = 200, 800, 0.25
    s = np.sort(np.asarray(rmt.gaussian_singular_values(fresh_key, m, n, 10)).ravel()) / math.sqrt(n)
    grid = np.linspace(1 - math.sqrt(r), 1 + math.sqrt(r), 4001)
    dens = np.asarray(rmt.mp_singular_density(grid, r), dtype=float)
    cdf = np.concatenate([[0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    emp = np.arange(1, s.size + 1) / s.size
    assert abs(cdf[-1] - 1) < 2e-3
    assert np.max(np.abs(np.interp(s, grid, cdf) - emp)) < 0.02


def test_singular_values_by_rows_matches_separate_draws_in_law(fresh_key):
    ms, n = [50, 100, 200], 200
    out = rmt.singular_values_by_rows(fresh_key, ms, n, n_draws=4)
    assert [o.shape for o in out] == [(4, 50), (4, 100), (4, 200)]
    for m, s in zip(ms[:2], out[:2]):  # over 15 seeds: errors ≤ 0.06 √n at m = 50
        lo, hi = rmt.singular_value_edges(m, n)
        assert abs(float(s[:, 0].mean()) - hi) < 0.1 * math.sqrt(n)
        assert abs(float(s[:, -1].mean()) - lo) < 0.1 * math.sqrt(n)
    # square case: the smallest singular value is O(1/√n), far below the bulk at √n
    assert float(out[2][:, -1].max()) < 0.05 * math.sqrt(n)


def test_union_bound_epsilon_scales_like_sqrt_k_over_n():
    e1, e4 = rmt.union_bound_epsilon(100, 10_000), rmt.union_bound_epsilon(400, 10_000)
    assert 1.8 < e4 / e1 < 2.05  # ≈ √4, minus the ln(1/δ) offset
    k, n, delta = 50, 20_000, 0.01
    eps = rmt.union_bound_epsilon(k, n, delta)
    assert 2 ** (k + 1) * math.exp(-n * eps**2 / 8) == pytest.approx(delta)


# --- norm propagation ------------------------------------------------------------------------


def test_he_relu_preserves_norms_with_the_exact_variance(fresh_key):
    """Var ρ_L² = Π(1 + 5/n) − 1 exactly, not its first-order 5Σ1/n.

    Narrow layers make the two far apart: width 8, L = 3 gives 3.291 against 1.875. ρ² is
    heavy-tailed, so the variance needs many networks: with 100 000 networks, over 30 seeds
    (0–29) the sample variance was 3.299 ± 0.075 (s.d.; range 3.15–3.43). The band, ±0.37,
    is 5 s.d.; the first-order value is 19 s.d. away.
    """
    width, L, N = 8, 3, 100_000
    rho = rmt.sample_layer_norms(fresh_key, [width] * (L + 1), n_networks=N)
    assert rho.shape == (N, 1, L + 1)
    r2 = np.asarray(rho[:, 0, -1], dtype=np.float64) ** 2
    var = rmt.relu_norm_variance([width] * L)
    assert var == pytest.approx((1 + 5 / 8) ** 3 - 1)
    # E ρ_L² = 1: the sd of the mean over N networks is √(3.29/N) ≈ 0.0057; 5 s.d.
    assert abs(r2.mean() - 1) < 0.03, r2.mean()
    assert abs(r2.var() - var) < 0.37, (r2.var(), var, 5 * L / width)


def test_length_map_matches_simulation_for_other_scales(fresh_key):
    for act, scale in (("relu", "lecun"), ("tanh", "lecun"), ("relu", 1.5)):
        rho = rmt.sample_layer_norms(jax.random.fold_in(fresh_key, hash(act) % 97), [256] * 5,
                                     n_networks=32, activation=act, weight_scale=scale)
        pred = np.asarray(rmt.length_map(act, scale, 4))
        np.testing.assert_allclose(np.asarray(rho).mean(axis=(0, 1)), pred, rtol=0.08)
    np.testing.assert_allclose(rmt.length_map("relu", "lecun", 4), 2.0 ** (-np.arange(5) / 2), rtol=1e-5)
    np.testing.assert_allclose(rmt.length_map("relu", "he", 4), np.ones(5), rtol=1e-5)


def test_norm_fluctuations_shrink_with_width(fresh_key):
    sds = []
    for w in (16, 64, 256):
        rho = rmt.sample_layer_norms(jax.random.fold_in(fresh_key, w), [w] * 5, n_networks=512)
        sds.append(float(jnp.std(rho[:, 0, -1] ** 2)))
    # expected ratio 2 per 4× width; ρ² is heavy-tailed at width 16, so with 128 networks the
    # 16/64 ratio fell to 1.32 (once in 30 seeds). With 512 networks, over 40 seeds: 16/64
    # 2.32 (min 1.79), 64/256 2.13 ± 0.15 (min 1.78)
    assert sds[0] > 1.4 * sds[1] > 1.4 ** 2 * sds[2], sds


# --- gradients -------------------------------------------------------------------------------


def test_euler_identity_makes_the_relative_linear_distance_a_cosine(fresh_key):
    st = rmt.sample_gradient_stats(fresh_key, 128, n_networks=8, n_inputs=16)
    np.testing.assert_allclose(st.relative_linear_distance, jnp.abs(st.cos), atol=1e-5)
    # with tanh Euler fails: the two differ
    st = rmt.sample_gradient_stats(fresh_key, 128, n_networks=8, n_inputs=16, activation="tanh")
    assert float(jnp.max(jnp.abs(st.relative_linear_distance - jnp.abs(st.cos)))) > 1e-3


def test_mean_cosine_falls_like_inverse_sqrt_d_with_constant_sqrt_2_over_pi(fresh_key):
    """Log-log slope of E|cos∠(x, ∇f)| against d in [−0.6, −0.4], constant ≈ √(2/π).

    Many independent networks (inputs on one network share an offset of f and are
    correlated). Over 12 seeds: slope −0.47 … −0.54, constant at slope −1/2 within 3.5 %,
    free-fit constant within 17 % (later, over 16 seeds, up to 26 %).
    """
    out = rmt.cosine_scaling(fresh_key, [16, 64, 256, 512], n_networks=96, n_inputs=8)
    assert -0.6 <= out.slope <= -0.4, out.slope
    assert abs(out.constant_half / SQRT_2_OVER_PI - 1) < 0.1, out.constant_half
    # the free-fit constant extrapolates the line to d = 1, so a slope error of 0.03 moves it
    # by about 15 %: over 16 more fresh seeds it ranged 0.91 … 1.26 × √(2/π)
    assert abs(out.constant / SQRT_2_OVER_PI - 1) < 0.4, out.constant
    # each point within 4 network-level standard errors of the prediction
    assert np.all(np.abs(out.sqrt_d_mean_abs_cos - SQRT_2_OVER_PI) < 4 * out.se + 0.02)
    # at d = 16 an input can land where ∇f = 0 (1 input in 768 once in 30 seeds); such
    # inputs are left out of the means (cos is NaN there), and they are rare
    assert np.all(out.dead[1:] == 0) and out.dead[0] < 0.01, out.dead


def test_gradient_norm_concentrates_as_width_grows(fresh_key):
    """CV of ‖∇f‖ over independent networks falls with width (about like width^{-1/2})."""
    d = 256
    cvs, means = [], []
    for m in (1 / 16, 1 / 4, 1.0, 4.0):
        st = rmt.sample_gradient_stats(jax.random.fold_in(fresh_key, int(16 * m)), d,
                                       hidden=(m,), n_networks=256, n_inputs=1)
        s = st.summary()
        cvs.append(s["grad_norm_cv"])
        means.append(s["grad_norm_mean"])
    assert all(a > b for a, b in zip(cvs, cvs[1:])), cvs
    assert cvs[0] > 2.5 * cvs[-1], cvs
    # E‖∇f‖² = 1 for one hidden layer (exercise), so the mean norm is near 1 at large width
    assert abs(means[-1] - 1) < 0.05, means


def test_gradient_is_nearly_constant_on_a_small_ball(fresh_key):
    N, B, R = 16, 4, 8
    res = {}
    for d in (32, 512):
        k1, k2, k3 = jax.random.split(jax.random.fold_in(fresh_key, d), 3)
        p = nets.init_params(k1, [d, d, d], n=N)
        X = data.sphere(k2, N * B, d).reshape(N, B, d)
        U = data.sphere(k3, N * B * R, d, radius=1.0).reshape(N, B, R, d)
        res[d] = rmt.gradient_on_ball(p, X, U, 2.0)
        assert res[d].norm_ratio.shape == res[d].cos.shape == (N, B, R)
    mean = lambda d, what: float(jnp.mean(getattr(res[d], what)))  # noqa: E731
    # fewer units switch and the gradient turns less at larger d
    assert mean(512, "pattern_change") < 0.6 * mean(32, "pattern_change")
    assert mean(512, "cos") > mean(32, "cos")
    assert 0.9 < mean(512, "norm_ratio") < 1.1
    # a zero radius would change nothing, but is rejected as bad input
    with pytest.raises(ValueError, match="radius"):
        rmt.gradient_on_ball(p, X, U, 0.0)


def test_fit_power_law_recovers_a_known_law():
    x = np.array([10.0, 100.0, 1000.0])
    a, c = stats.fit_power_law(x, 3.0 * x**-0.5)
    assert a == pytest.approx(-0.5) and c == pytest.approx(3.0)
    assert rmt.fit_power_law is stats.fit_power_law  # the old import path, for now


def test_network_mean_averages_networks_not_inputs():
    v = np.array([[1.0, 1.0, 1.0, np.inf], [3.0, np.nan, np.nan, np.nan], [np.nan] * 4])
    m = stats.network_mean(v, scale=2.0)
    # per-network means 1 and 3 (the third network has no value): mean 2·2, se 2·√2/√2
    assert (m.mean, m.n) == (4.0, 2) and m.se == pytest.approx(2.0)
    assert stats.network_mean(np.array([5.0])).se == math.inf
    with pytest.raises(ValueError, match="no network has a finite value"):
        stats.network_mean(np.full((3, 2), np.nan))


def _dead_stack(key, d=8, n=2):
    """A stack of n networks whose first one is dead (readout 0, so f ≡ 0 and ∇f ≡ 0)."""
    p = nets.init_params(key, [d, d], n=n)
    return p.replace(readout=p.readout.at[0].set(0.0))


def test_a_dead_network_is_reported_not_averaged_into_nan():
    key = jax.random.key(5)
    p = _dead_stack(key)
    X = data.sphere(jax.random.key(6), 2 * 4, 8).reshape(2, 4, 8)
    st = rmt.gradient_stats(p, X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from NaN means
        s = st.summary()
    assert s["dead"] == 0.5 and s["d"] == 8
    assert all(math.isfinite(s[k]) for k in ("mean_abs_cos", "grad_norm_mean", "grad_norm_cv"))
    # the living network alone: one network, so the s.e. is undefined and says so (inf)
    assert s["se"] == math.inf
    all_dead = rmt.gradient_stats(p.replace(readout=jnp.zeros_like(p.readout)), X)
    with pytest.raises(ValueError, match="dead networks"):
        all_dead.summary()


def test_gradient_on_ball_rejects_a_dead_network():
    p = _dead_stack(jax.random.key(5))
    X = data.sphere(jax.random.key(6), 2 * 4, 8).reshape(2, 4, 8)
    U = data.sphere(jax.random.key(7), 2 * 4 * 3, 8, radius=1.0).reshape(2, 4, 3, 8)
    with pytest.raises(ValueError, match=r"∇f\(x\) = 0 at 4 of 8 inputs"):
        rmt.gradient_on_ball(p, X, U, 1.0)


def test_layer_norms_reject_a_zero_input():
    p = nets.init_params(jax.random.key(0), [8, 8], n=2)
    X = data.sphere(jax.random.key(1), 4, 8).reshape(2, 2, 8).at[1, 0].set(0.0)
    with pytest.raises(ValueError, match="1 zero input"):
        rmt.layer_norms(p, X)


def test_cosine_scaling_at_one_d_has_every_field_and_no_slope():
    one = rmt.cosine_scaling(jax.random.key(3), [16], hidden=(1.0,), n_networks=4, n_inputs=4)
    two = rmt.cosine_scaling(jax.random.key(3), [16, 32], hidden=(1.0,), n_networks=4,
                             n_inputs=4)
    assert one.slope is None and one.constant is None and math.isfinite(one.constant_half)
    assert one.d.tolist() == [16] and two.d.tolist() == [16, 32]
    # fold_in(key, d): the d = 16 sample does not depend on which other d are run
    np.testing.assert_array_equal(np.asarray(one.raw[0].cos), np.asarray(two.raw[0].cos))
    assert isinstance(two.slope, float)


def test_numbers_may_be_numpy_or_jax_scalars():
    assert rmt.mp_edges(np.float32(0.25)) == rmt.mp_edges(0.25)
    assert rmt.mp_edges(jnp.asarray(0.25), var=np.float64(1.0)) == rmt.mp_edges(0.25)
    sv = rmt.gaussian_singular_values(jax.random.key(0), np.int64(3), jnp.asarray(4),
                                      n_draws=np.int32(2), std=jnp.asarray(2.0))
    assert sv.shape == (2, 3)
    assert rmt.union_bound_epsilon(np.int64(10), 100) == rmt.union_bound_epsilon(10, 100)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.0, -0.5, 1.5, float("nan"), "a lot"])
def test_ratio_outside_its_domain_is_rejected(ratio):
    with pytest.raises(ValueError, match="ratio"):
        rmt.mp_edges(ratio)
    with pytest.raises(ValueError, match="ratio"):
        rmt.mp_density(jnp.ones(3), ratio)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, None])
def test_non_positive_or_non_integer_sizes_are_rejected(bad):
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="positive integer"):
        rmt.gaussian_singular_values(key, bad, 10)
    with pytest.raises(ValueError, match="positive integer"):
        rmt.gaussian_singular_values(key, 10, 10, n_draws=bad)
    with pytest.raises(ValueError, match="positive integer"):
        rmt.cosines_and_norms(key, bad, 10)
    with pytest.raises(ValueError, match="positive integer"):
        rmt.singular_value_edges(bad, 10)
    with pytest.raises(ValueError, match="positive integer"):
        rmt.sample_gradient_stats(key, bad)
    with pytest.raises(ValueError, match="positive integer"):
        rmt.length_map("relu", "he", bad)
    with pytest.raises(ValueError):
        rmt.relu_norm_variance([16, bad])


def test_other_bad_inputs_are_rejected_with_a_clear_message():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="x contains NaN"):
        rmt.mp_density(jnp.array([1.0, jnp.nan]), 0.5)
    with pytest.raises(ValueError, match="var"):
        rmt.mp_edges(0.5, var=-1.0)
    with pytest.raises(ValueError, match="std"):
        rmt.gaussian_singular_values(key, 3, 4, std=float("nan"))
    with pytest.raises(ValueError, match="m must be ≤ n"):
        rmt.singular_values_by_rows(key, [10, 50], 20)
    with pytest.raises(ValueError, match="at least one"):
        rmt.singular_values_by_rows(key, [], 20)
    with pytest.raises(ValueError, match="delta"):
        rmt.union_bound_epsilon(10, 100, delta=1.5)
    with pytest.raises(ValueError, match="multipliers"):
        rmt.sample_gradient_stats(key, 16, hidden=(1.0, 0.0))
    with pytest.raises(ValueError, match="dims"):
        rmt.cosine_scaling(key, [])
    with pytest.raises(ValueError, match="hidden_widths"):
        rmt.relu_norm_variance([])
    with pytest.raises(ValueError, match="positive finite"):
        rmt.fit_power_law([1, 2, 3], [1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="same length"):
        rmt.fit_power_law([1, 2, 3], [1.0, 2.0])
    with pytest.raises(ValueError, match="unknown activation"):
        rmt.length_map("swish-ish", "he", 3)
    p = nets.init_params(key, [8, 8], n=3)
    with pytest.raises(ValueError, match="stack of N networks"):
        rmt.gradient_stats(nets.init_params(key, [8, 8]), jnp.ones((3, 2, 8)))
    with pytest.raises(ValueError, match=r"shape \(N, B, d\)"):
        rmt.gradient_stats(p, jnp.ones((2, 2, 8)))
    with pytest.raises(ValueError, match="NaN"):
        rmt.layer_norms(p, jnp.full((3, 2, 8), jnp.nan))
    with pytest.raises(ValueError, match="U must have shape"):
        rmt.gradient_on_ball(p, jnp.ones((3, 2, 8)), jnp.ones((3, 2, 8)), 1.0)


# --- exact densities of Figure 1 and the switching law (chapter 2, issue 16) ----------------


@pytest.mark.parametrize("d", [2, 3, 30, 3000])
def test_cosine_and_norm_densities_integrate_to_one(d):
    t = np.linspace(-1, 1, 400_001)
    assert np.trapezoid(rmt.cosine_density(t, d), t) == pytest.approx(1.0, abs=2e-3 if d == 2 else 1e-4)  # the endpoints are set to 0
    u = np.linspace(0, 4, 400_001)
    assert np.trapezoid(rmt.norm_density(u, d), u) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(rmt.cosine_density(np.array([0.5]), 3), [0.5])  # uniform on [-1, 1]


def test_densities_agree_with_samples():
    cos, norm = rmt.cosines_and_norms(jax.random.key(5), 30, 50_000)
    t = np.linspace(-1, 1, 20_001)
    cdf = np.cumsum(rmt.cosine_density(t, 30)) * (t[1] - t[0])
    q = np.interp([0.1, 0.5, 0.9], cdf, t)
    np.testing.assert_allclose(np.quantile(np.asarray(cos), [0.1, 0.5, 0.9]), q, atol=0.01)
    u = np.linspace(0, 3, 20_001)
    cdf = np.cumsum(rmt.norm_density(u, 30)) * (u[1] - u[0])
    np.testing.assert_allclose(np.quantile(np.asarray(norm), [0.1, 0.5, 0.9]),
                               np.interp([0.1, 0.5, 0.9], cdf, u), atol=0.005)


def test_switching_fraction_is_the_first_layer_angle_law():
    """P(sign⟨w, x⟩ ≠ sign⟨w, x + r u⟩) = ∠/π for Gaussian w; ∠ ≈ arctan(r/√d)."""
    d, r, units = 64, 2.0, 200_000
    kx, ku, kw = jax.random.split(jax.random.key(7), 3)
    x = data.sphere(kx, 1, d)[0]
    u = data.sphere(ku, 1, d, radius=1.0)[0]
    W = jax.random.normal(kw, (units, d))
    frac = float(jnp.mean((W @ x > 0) != (W @ (x + r * u) > 0)))
    y = x + r * u
    angle = math.acos(float(jnp.dot(x, y) / (jnp.linalg.norm(x) * jnp.linalg.norm(y))))
    assert frac == pytest.approx(angle / math.pi, abs=0.003)  # binomial sd ≈ 0.0006
    assert rmt.switching_fraction(d, r) == pytest.approx(math.atan(r / 8) / math.pi)


def test_densities_and_switching_fraction_reject_bad_input():
    with pytest.raises(ValueError, match="d >= 2"):
        rmt.cosine_density(0.1, 1)
    with pytest.raises(ValueError):
        rmt.norm_density(1.0, 0)
    with pytest.raises(ValueError, match="radius"):
        rmt.switching_fraction(16, 0.0)
    with pytest.raises(ValueError):
        rmt.switching_fraction(0, 1.0)
