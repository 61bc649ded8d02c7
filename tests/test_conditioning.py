"""Chapter 4: Gaussian conditioning and the one-step flip law (mini_adv.conditioning), the
package's Gauss–Hermite rule (mini_adv.quadrature) and chapter 4's figures."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from mini_adv import attacks, conditioning, data, figures, nets, quadrature
from mini_adv.attacks import Status

SQRT_2PI = math.sqrt(2 * math.pi)

# --- quadrature ----------------------------------------------------------------------------


def _reference(value, slope):
    """(E value(G)², E slope(G)²) by adaptive quadrature (scipy.integrate.quad in float64 on
    [−40, 0] and [0, 40], where the Gaussian tail beyond is below 1e-300), with the derivative
    written out by hand: independent of Gauss–Hermite and of jax.grad."""
    phi = lambda z: math.exp(-z * z / 2) / SQRT_2PI  # noqa: E731

    def integral(h):
        return sum(integrate.quad(lambda z: h(z) ** 2 * phi(z), a, b, epsabs=1e-15,
                                  epsrel=1e-13, limit=200)[0] for a, b in ((-40, 0), (0, 40)))

    return integral(value), integral(slope)


def test_relu_moments_are_one_half_and_others_exact():
    m0, m1 = conditioning.gaussian_moments("relu")
    assert m0 == pytest.approx(0.5, abs=1e-12) and m1 == pytest.approx(0.5, abs=1e-12)
    assert conditioning.gaussian_moments("abs") == pytest.approx((1.0, 1.0), abs=1e-12)
    assert conditioning.gaussian_moments("identity") == pytest.approx((1.0, 1.0), abs=1e-12)
    assert conditioning.gaussian_moments("square") == pytest.approx((3.0, 4.0), abs=1e-10)
    # closed forms: E sin²G = (1 − e⁻²)/2, E cos²G = (1 + e⁻²)/2
    assert conditioning.gaussian_moments("sin") == pytest.approx(
        ((1 - math.exp(-2)) / 2, (1 + math.exp(-2)) / 2), abs=1e-12)
    # a scale: ReLU(2G)² has mean 2, its slope is unchanged
    assert conditioning.gaussian_moments("relu", std=2.0) == pytest.approx((2.0, 0.5), abs=1e-12)


@pytest.mark.parametrize("name,value,slope", [
    ("tanh", math.tanh, lambda z: 1 - math.tanh(z) ** 2),
    ("softplus", lambda z: math.log1p(math.exp(-abs(z))) + max(z, 0.0),
     lambda z: 0.5 * (1 + math.tanh(z / 2))),
])
def test_smooth_moments_match_adaptive_quadrature(name, value, slope):
    # tanh: (0.394294490397841, 0.464402902448268) from scipy.integrate.quad; the rounded values
    # (0.3947, 0.4639) quoted in the project's theory notes are off in the fourth digit.
    ref = _reference(value, slope)
    assert conditioning.gaussian_moments(name) == pytest.approx(ref, abs=1e-10)
    if name == "tanh":
        assert ref == pytest.approx((0.394294490397841, 0.464402902448268), abs=1e-12)


def test_flip_law_closed_forms():
    s = np.array([0.5, 1.0, 2.0, 4.0])
    # ReLU: s·(1/2)/√(1/2) = s/√2, and 2Φ(z) − 1 = erf(z/√2)
    np.testing.assert_allclose(conditioning.predicted_flip_probability("relu", s),
                               [math.erf(v / 2) for v in s], atol=1e-12)
    # |x| and the identity share the law 2Φ(s) − 1
    np.testing.assert_allclose(conditioning.predicted_flip_probability("abs", s),
                               [math.erf(v / math.sqrt(2)) for v in s], atol=1e-12)
    assert isinstance(conditioning.predicted_flip_probability("tanh", 1.0), float)
    p = conditioning.predicted_flip_probability("softplus", np.linspace(0.1, 5, 20))
    assert np.all(np.diff(p) > 0) and 0 < p[0] < p[-1] < 1
    assert conditioning.predicted_output_variance("square") == pytest.approx(3.0)
    assert conditioning.predicted_grad_norm_sq("square") == pytest.approx(4.0)


def test_mean_field_moments():
    assert conditioning.mean_field_moments("tanh") == pytest.approx(
        conditioning.gaussian_moments("tanh"), abs=1e-14)
    for L in (1, 2, 5):
        # He-scaled ReLU keeps both moments at 1; LeCun halves both per layer
        assert conditioning.mean_field_moments("relu", L, "he") == pytest.approx((1.0, 1.0))
        assert conditioning.mean_field_moments("relu", L, "lecun") == pytest.approx((2.0**-L,) * 2)
    # depth 2, tanh, c = 1.5, against nested adaptive quadrature (scipy), independent of the
    # Gauss–Hermite rule: p1 = c², p2 = c² E tanh(√p1 G)², Var f = E tanh(√p2 G)²,
    # E‖∇f‖² = c² E tanh'(√p1 G)² · c² E tanh'(√p2 G)²
    c = 1.5
    slope = lambda z: 1 - math.tanh(z) ** 2  # noqa: E731
    q1, s1 = _reference(lambda z: math.tanh(c * z), lambda z: slope(c * z))
    p2 = c * c * q1
    q2, s2 = _reference(lambda z: math.tanh(math.sqrt(p2) * z), lambda z: slope(math.sqrt(p2) * z))
    assert conditioning.mean_field_moments("tanh", 2, c) == pytest.approx(
        (q2, c**4 * s1 * s2), rel=1e-8)  # measured: 2e-9 (tanh has poles off the real axis)
    # numbers may be NumPy or 0-d JAX scalars
    assert conditioning.mean_field_moments("relu", np.int64(2), np.float32(1.0)) == \
        pytest.approx((0.25, 0.25))
    assert conditioning.gaussian_moments("relu", std=jnp.asarray(2.0)) == pytest.approx((2.0, 0.5))


def test_quadrature_is_exact_for_polynomials_and_the_length_map_recurses():
    # E (sG)^{2k} = s^{2k} (2k − 1)!!, exact for degree < 2·NUM_NODES
    with conditioning.float64():
        for k, dfact in ((1, 1), (2, 3), (3, 15), (5, 945)):
            got = float(quadrature.expectation(lambda z, k=k: z ** (2 * k), 2.0))
            assert got == pytest.approx(dfact * 4.0**k, rel=1e-12)
        # one expectation per entry of std
        np.testing.assert_allclose(quadrature.expectation(lambda z: z**2, jnp.array([1.0, 3.0])),
                                   [1.0, 9.0], rtol=1e-12)
        # ReLU: q_ℓ = (c²/2) q_{ℓ−1}; x ↦ x: q_ℓ = c² q_{ℓ−1}
        q = quadrature.length_map(jax.nn.relu, 1.0, 3, 4.0)
        np.testing.assert_allclose(q, [4.0, 2.0, 1.0, 0.5], rtol=1e-12)
        q = quadrature.length_map(lambda z: z, 3.0, 2, 1.0)
        np.testing.assert_allclose(q, [1.0, 9.0, 81.0], rtol=1e-12)
    z, w = quadrature.nodes(jnp.float32)
    assert z.shape == w.shape == (quadrature.NUM_NODES,) and z.dtype == jnp.float32
    assert float(jnp.sum(w)) == pytest.approx(1.0, rel=1e-6) and not bool(jnp.any(z == 0))


# --- the conditioning decomposition --------------------------------------------------------


def test_decomposition_is_exact_for_any_x():
    k1, k2 = jax.random.split(jax.random.key(0))
    W = jax.random.normal(k1, (3, 20, 50)) / math.sqrt(50)
    x = 3.0 * jax.random.normal(k2, (50,))  # not on the sphere: W = g x̂ᵀ/‖x‖ + W P⊥
    g, W_perp = conditioning.conditioning_decomposition(W, x)
    assert g.shape == (3, 20) and W_perp.shape == W.shape
    xhat = x / jnp.linalg.norm(x)
    np.testing.assert_allclose(g, W @ x, atol=1e-5)
    np.testing.assert_allclose(W, g[..., None] * xhat / jnp.linalg.norm(x) + W_perp, atol=1e-6)
    np.testing.assert_allclose(W_perp @ x, 0.0, atol=1e-5)


def test_rows_of_w_perp_are_independent_of_g(fresh_key):
    """64 networks × 256 rows = 16 384 independent rows; each correlation has s.e. 1/√n ≈ 0.0078.

    Over 40 fresh seeds: corr(g, ⟨P⊥w, u⟩), corr(|g|, |⟨P⊥w, u⟩|), corr(|g|, ‖P⊥w‖²) had s.d.
    0.0073–0.0087 and |max| 0.021, so |corr| < 0.045 is about 5 s.d.; the ratio of the s.d. of
    ⟨P⊥w, u⟩ for |g| > 1.5 and |g| < 2/3 was 0.997 ± 0.016 (band ±0.09, 5.5 s.d.), while for the
    rows of W it was 2.08 ± 0.03 (dependence is visible); corr(g, ⟨w, u⟩) = 0.707 ± 0.004.
    """
    k1, k2, k3 = jax.random.split(fresh_key, 3)
    params, _ = conditioning.draw_networks(k1, [256, 256], n_networks=64)
    ind = conditioning.independence_samples(k3, params, data.sphere(k2, 1, 256)[0])
    s = ind.summary()
    assert s["n_rows"] == 64 * 256
    assert s["reconstruction_error"] < 1e-5 and s["orthogonality_error"] < 1e-4
    for k in ("corr_g_perp_u", "corr_absg_abs_perp_u", "corr_absg_perp_norm_sq"):
        assert abs(s[k]) < 0.045, (k, s)
    assert abs(s["corr_g_wu"] - math.sqrt(0.5)) < 0.025, s
    assert abs(s["sd_perp_u_big_g"] / s["sd_perp_u_small_g"] - 1) < 0.09, s
    assert s["sd_wu_big_g"] / s["sd_wu_small_g"] > 1.8, s


# --- the one-step experiment ---------------------------------------------------------------

# Chapter sizes: d = m = 256, 256 networks × 16 inputs. Over 40 fresh seeds the ReLU flip
# rates at s = 1, 2, 4 had mean − p(s) = −0.012, −0.023, −0.0074 (a finite-width bias, against
# the flip: units crossing the kink, of order s²/√m) and s.d. 0.0089, 0.0078, 0.0021; the
# largest deviations were 0.032, 0.044, 0.012. The band [p − LOW, p + HIGH] puts each edge at
# least 4.7 s.d. from the mean; a wrong law (e.g. 2Φ(s) − 1, without the square root) is 0.16
# away at s = 1.
RELU_STEPS = [1.0, 2.0, 4.0]
LOW, HIGH = [0.06, 0.065, 0.02], [0.03, 0.025, 0.01]


def test_relu_flip_rates_follow_the_law(fresh_key):
    r = conditioning.sample_one_step(fresh_key, [256, 256], RELU_STEPS, n_networks=256,
                                     n_inputs=16)
    p = conditioning.predicted_flip_probability("relu", RELU_STEPS)
    print(r.summary())
    for rate, pred, lo, hi in zip(r.flip_rate, p, LOW, HIGH):
        assert pred - lo <= rate <= pred + hi, (rate, pred)
    # the magnitudes: Var f = 0.494 ± 0.016, mean ‖∇f‖² = 0.4997 ± 0.0036 over 40 seeds
    assert abs(np.var(r.f) - 0.5) < 0.08
    assert abs(np.mean(r.grad_norm**2) - 0.5) < 0.02
    # every flip is a verified sign change, and statuses account for every sample
    assert np.array_equal(r.flipped, r.status == Status.FLIPPED)
    assert np.array_equal(r.f[None] * r.f_adv < 0, r.flipped)
    # the step is x − s·sign(f)∇f: f(x') is f − s·sign(f)‖∇f‖² up to a small residual
    assert np.all(np.abs(r.residual[0]) < 0.5) and r.residual_sd(1.0) < 0.03


def test_residual_spread_shrinks_with_d(fresh_key):
    """s.d. of f(x') − (f − s·sign(f)‖∇f‖²) at s = 1, m = d: ratio d = 512 vs d = 64 was
    0.26 ± 0.027 (max 0.32) over 40 seeds (slope about −0.65 in d); the bound 0.5 is 9 s.d. away."""
    k1, k2 = jax.random.split(fresh_key)
    small = conditioning.sample_one_step(k1, [64, 64], [1.0], n_networks=32, n_inputs=8)
    large = conditioning.sample_one_step(k2, [512, 512], [1.0], n_networks=32, n_inputs=8)
    assert large.residual_sd(1.0) < 0.5 * small.residual_sd(1.0)


def test_deeper_networks_are_further_from_the_first_order_formula(fresh_key):
    """At d = 128 with He-scaled ReLU layers of width 128, the residual s.d. at s = 1 roughly
    grows in proportion to the depth (chapter: 0.045, 0.093, 0.146, 0.203 for L = 1..4 at
    d = 256). The ratio L = 3 : L = 1 was 3.15 ± 0.33 (min 2.63) over 40 seeds; the bound 1.5
    is 5 s.d. below."""
    k1, k2 = jax.random.split(fresh_key)
    one = conditioning.sample_one_step(k1, [128, 128], [1.0], n_networks=32, n_inputs=8,
                                       weight_scale="he")
    three = conditioning.sample_one_step(k2, [128] * 4, [1.0], n_networks=32, n_inputs=8,
                                         weight_scale="he")
    assert three.residual_sd(1.0) > 1.5 * one.residual_sd(1.0)
    assert three.predicted_flip_rate()[0] == pytest.approx(math.erf(1 / math.sqrt(2)))


def test_one_hidden_relu_unit_never_flips(fresh_key):
    """f = a·ReLU(⟨w, x⟩) has one sign: no step may be reported as a flip."""
    r = conditioning.sample_one_step(fresh_key, [64, 1], [1.0, 4.0, 100.0], n_networks=32,
                                     n_inputs=16)
    assert not r.flipped.any()
    for i in range(3):
        c = r.counts(i)
        assert c["FLIPPED"] == 0 and c["NO_FLIP"] + c["ZERO_OUTPUT"] == r.f.size
        assert c["ZERO_OUTPUT"] == int(np.sum(r.f == 0))
    # the same through the public attack, on one network
    p = nets.init_params(fresh_key, [64, 1], weight_scale="lecun")
    res = attacks.gradient_step(p, data.sphere(fresh_key, 32, 64), s=100.0)
    assert res.success_rate == 0.0 and res.counts()["FLIPPED"] == 0


def test_positive_readout_breaks_the_law_for_even_activations(fresh_key):
    """With a_i ≥ 0, x² gives f(x) = xᵀ(Σ a_i w_i w_iᵀ)x ≥ 0 and ReLU gives f ≥ 0: nothing
    flips. tanh is odd (E tanh(G) = 0), so its flip rate stays near p(1) = 0.54: 0.529 ± 0.033
    over 40 seeds at these sizes (range 0.46–0.60); the band (0.35, 0.75) is 5 s.d. wide."""
    params, X = conditioning.draw_networks(fresh_key, [128, 128], n_networks=32, n_inputs=8)
    params = params.replace(readout=jnp.abs(params.readout))
    for a in ("square", "relu"):
        r = conditioning.one_step_samples(params.replace(activation=a), X, [1.0, 4.0])
        assert np.all(r.f >= 0) and not r.flipped.any()
    r = conditioning.one_step_samples(params.replace(activation="tanh"), X, [1.0])
    assert 0.35 < r.flip_rate[0] < 0.75


def test_draw_networks_is_init_params_with_n():
    key = jax.random.key(3)
    p, X = conditioning.draw_networks(key, [32, 16], n_networks=4, n_inputs=2,
                                      activation="tanh")
    ref = nets.init_params(jax.random.split(key)[0], [32, 16], activation="tanh",
                           weight_scale="lecun", n=4)
    # the same draws (jitted here, eager there: equal up to float32 rounding)
    np.testing.assert_allclose(p.kernels[0], ref.kernels[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(p.readout, ref.readout, rtol=1e-6, atol=1e-7)
    assert p.activation == "tanh" and X.shape == (4, 2, 32)
    np.testing.assert_allclose(jnp.linalg.norm(X, axis=-1), math.sqrt(32), rtol=1e-5)
    # one network of the stack gives the same numbers as gradient_step on it alone
    r = conditioning.one_step_samples(p, X, [1.5])
    one = jax.tree.map(lambda a: a[2], p)
    res = attacks.gradient_step(one, X[2], s=1.5)
    np.testing.assert_allclose(r.f_adv[0, 2], res.f_adv, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(r.flipped[0, 2], res.flipped)


def test_same_key_same_numbers():
    a = conditioning.sample_one_step(jax.random.key(7), [32, 32], [1.0, 2.0], n_networks=4,
                                     n_inputs=3, activation="gelu")
    b = conditioning.sample_one_step(jax.random.key(7), [32, 32], [1.0, 2.0], n_networks=4,
                                     n_inputs=3, activation="gelu")
    np.testing.assert_array_equal(a.f_adv, b.f_adv)
    assert a.f_adv.shape == (2, 4, 3) and a.flip_rate.shape == (2,)


def test_one_step_kernel_returns_a_named_record():
    p, X = conditioning.draw_networks(jax.random.key(5), [16, 8], n_networks=3, n_inputs=2)
    out = conditioning.one_step_kernel(p, X, jnp.array([0.5, 1.0]))
    assert isinstance(out, conditioning.OneStepOutput)
    assert out.f.shape == out.grad_norm.shape == (3, 2)
    assert out.f_adv.shape == out.flipped.shape == out.status.shape == (2, 3, 2)
    r = conditioning.one_step_samples(p, X, [0.5, 1.0])
    np.testing.assert_array_equal(r.f_adv, out.f_adv)


def test_weight_scale_label_is_checked_against_the_weights():
    """CODE-33: He networks labelled "lecun" would predict p(1) = 0.52 instead of 0.68."""
    he, X = conditioning.draw_networks(jax.random.key(6), [64, 64], n_networks=4, n_inputs=2,
                                       weight_scale="he")
    assert he.weight_scale == pytest.approx(math.sqrt(2))  # recorded by init_params
    assert conditioning.one_step_samples(he, X, 1.0).predicted_flip_rate()[0] == pytest.approx(
        math.erf(1 / math.sqrt(2)))                       # the default is the recorded scale
    with pytest.raises(ValueError, match="does not match"):
        conditioning.one_step_samples(he, X, 1.0, weight_scale="lecun")
    with pytest.raises(ValueError, match="does not match"):
        conditioning.one_step_samples(he, X, 1.0, weight_scale=0.5)
    # networks that record no scale (built by hand): the label is required, and checked
    bare = he.replace(weight_scale=None)
    with pytest.raises(ValueError, match="do not record"):
        conditioning.one_step_samples(bare, X, 1.0)
    with pytest.raises(ValueError, match="does not match the networks"):
        conditioning.one_step_samples(bare, X, 1.0, weight_scale="lecun")
    r = conditioning.one_step_samples(he, X, 1.0, weight_scale="he")
    assert r.predicted_flip_rate()[0] == pytest.approx(math.erf(1 / math.sqrt(2)))
    lecun, X = conditioning.draw_networks(jax.random.key(6), [64, 64], n_networks=4, n_inputs=2)
    with pytest.raises(ValueError, match="does not match"):
        conditioning.one_step_samples(lecun, X, 1.0, weight_scale="he")
    # deeper: every layer is checked
    deep, X = conditioning.draw_networks(jax.random.key(7), [64, 64, 64], n_networks=4,
                                         weight_scale="he")
    deep = deep.replace(kernels=(deep.kernels[0], deep.kernels[1] / math.sqrt(2)),
                        weight_scale=None)
    with pytest.raises(ValueError, match="layer-2"):
        conditioning.one_step_samples(deep, X, 1.0, weight_scale="he")


def test_no_silent_nan():
    """CODE-36: a single network has no s.e. over networks; too few rows in a group of the
    independence summary; a power law over one d."""
    p, X = conditioning.draw_networks(jax.random.key(8), [16, 8], n_networks=1, n_inputs=4)
    r = conditioning.one_step_samples(p, X, [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2 networks"):
        r.flip_rate_se
    assert r.summary()["flip_rate_se"] is None and np.isfinite(r.summary()["flip_rate"]).all()
    ind = conditioning.independence_samples(jax.random.key(9), p, X[0, 0])
    assert ind.g.size == 8
    with pytest.raises(ValueError, match="needs at least 2 in each"):
        ind.summary(threshold=10.0)
    with pytest.raises(ValueError, match="two or more distinct d"):
        conditioning.residual_scaling([r, r])


# --- bad input -----------------------------------------------------------------------------

_P, _X = conditioning.draw_networks(jax.random.key(0), [8, 4], n_networks=2, n_inputs=3)


def test_step_for_flip_probability_inverts_the_law():
    for a in ("relu", "tanh", "square", "softplus"):
        for p in (0.1, 0.5, 0.9):
            s = conditioning.step_for_flip_probability(a, p)
            assert conditioning.predicted_flip_probability(a, s) == pytest.approx(p, abs=1e-9)
    assert conditioning.step_for_flip_probability("relu", 0.5) == pytest.approx(
        math.sqrt(2) * 0.6744897501960817, rel=1e-9)


def test_positive_readout_offset_and_band_fractions():
    assert conditioning.positive_readout_offset("square", 256) == pytest.approx(
        math.sqrt(2 * 256 / math.pi), rel=1e-9)
    assert conditioning.positive_readout_offset("relu", 256) == pytest.approx(
        16 / math.pi, rel=3e-3)
    assert abs(conditioning.positive_readout_offset("tanh", 256)) < 1e-9
    r = conditioning.sample_one_step(jax.random.key(3), [64, 64], [1.0], n_networks=16,
                                     n_inputs=8)
    inside, outside = conditioning.band_fractions(r, 1.0)
    band = np.abs(r.f) < r.moments()[1]
    assert inside == pytest.approx(r.flipped[0][band].mean())
    assert outside == pytest.approx(1 - r.flipped[0][~band].mean())
    with pytest.raises(ValueError, match="band"):
        conditioning.band_fractions(r.__class__(**{**r.__dict__, "s": np.array([1e3])}), 1e3)


@pytest.mark.parametrize("call, msg", [
    (lambda: conditioning.step_for_flip_probability("relu", 1.0), "p must be"),
    (lambda: conditioning.step_for_flip_probability("relu", 0.0), "p must be"),
    (lambda: conditioning.step_for_flip_probability("nope", 0.5), "unknown activation"),
    (lambda: conditioning.positive_readout_offset("relu", 0), "m must be"),
])
def test_new_helpers_reject_bad_input(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


@pytest.mark.parametrize("call,msg", [
    (lambda: conditioning.gaussian_moments("swish"), "unknown activation"),
    (lambda: conditioning.gaussian_moments("relu", std=0.0), "std"),
    (lambda: conditioning.gaussian_moments("relu", std=True), "boolean"),
    (lambda: conditioning.gaussian_moments(lambda z: jnp.exp(z * z)), "not finite"),
    (lambda: conditioning.predicted_flip_probability("relu", 0.0), "positive"),
    (lambda: conditioning.predicted_flip_probability("relu", -1.0), "positive"),
    (lambda: conditioning.predicted_flip_probability("relu", [1.0, float("nan")]), "positive"),
    (lambda: conditioning.predicted_flip_probability("relu", []), "positive"),
    (lambda: conditioning.predicted_flip_probability("relu", "big"), "positive"),
    (lambda: conditioning.predicted_flip_probability("nope", 1.0), "unknown activation"),
    (lambda: conditioning.predicted_flip_probability(lambda z: 0 * z, 1.0), "Var f"),
    (lambda: conditioning.flip_law(1.0, float("nan"), 1.0), "E‖∇f‖²"),
    (lambda: conditioning.mean_field_moments("relu", 0), "depth"),
    (lambda: conditioning.mean_field_moments("relu", 2.0), "depth"),
    (lambda: conditioning.mean_field_moments("relu", 2, "glorot"), "weight_scale"),
    (lambda: conditioning.mean_field_moments("relu", 2, -1.0), "weight_scale"),
    (lambda: conditioning.sample_one_step(jax.random.key(0), [0, 4], 1.0, n_networks=2),
     "positive integer"),
    (lambda: conditioning.sample_one_step(jax.random.key(0), [8, 0], 1.0, n_networks=2), "width"),
    (lambda: conditioning.sample_one_step(jax.random.key(0), [8], 1.0, n_networks=2),
     "at least 2 entries"),
    (lambda: conditioning.sample_one_step(jax.random.key(0), [8, 4], 0.0, n_networks=2), "positive"),
    (lambda: conditioning.sample_one_step(jax.random.key(0), [8, 4], 1.0, n_networks=0), "n_networks"),
    (lambda: conditioning.sample_one_step(0, [8, 4], 1.0, n_networks=2), "PRNG key"),
    (lambda: conditioning.sample_one_step(jax.random.key(0), [8, 4], 1.0, n_networks=2,
                                          activation="nope"), "unknown activation"),
    (lambda: conditioning.sample_one_step(jax.random.key(0), [8, 4], 1.0, n_networks=2,
                                          readout="positive"), "readout"),
    (lambda: conditioning.one_step_samples(jax.tree.map(lambda a: a[0], _P), _X[0], 1.0), "stack"),
    (lambda: conditioning.one_step_samples(_P, _X[:, :, :4], 1.0), "shape"),
    (lambda: conditioning.one_step_samples(_P, _X.at[0, 0, 0].set(jnp.nan), 1.0), "NaN"),
    (lambda: conditioning.one_step_samples(_P, _X.astype(jnp.int32), 1.0), "floating"),
    (lambda: conditioning.one_step_samples(
        _P.replace(readout=_P.readout.at[0, 0].set(jnp.inf)), _X, 1.0), "NaN or inf"),
    (lambda: conditioning.one_step_samples(_P, _X, -2.0), "positive"),
    (lambda: conditioning.conditioning_decomposition(jnp.ones((4, 8)), jnp.zeros(8)), "zero"),
    (lambda: conditioning.conditioning_decomposition(jnp.ones((4, 8)), jnp.ones(5)), "shape"),
    (lambda: conditioning.conditioning_decomposition(jnp.ones((4, 8)), jnp.full(8, jnp.inf)), "NaN"),
    (lambda: conditioning.conditioning_decomposition(jnp.ones((4, 8), jnp.int32), jnp.ones(8)),
     "floating"),
    (lambda: conditioning.independence_samples(jax.random.key(0), _P, jnp.ones(8),
                                               cos_angle=1.5), "cos_angle"),
    (lambda: conditioning.independence_samples(0, _P, jnp.ones(8)), "PRNG key"),
])
def test_bad_input_raises(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


# --- figures -------------------------------------------------------------------------------


def test_figures_draw_the_samples_they_are_given(agg_pyplot):
    plt = agg_pyplot
    p, X = conditioning.draw_networks(jax.random.key(1), [16, 16], n_networks=8, n_inputs=4)
    results = {a: conditioning.one_step_samples(p.replace(activation=a), X, [0.5, 1.0, 2.0])
               for a in ("relu", "tanh")}
    r = results["relu"]
    fig, ax = plt.subplots()
    figures.ch4.plot_joint(ax, r, 1)
    flipped, kept = ax.lines[0], ax.lines[1]  # the flipped samples, then the others
    np.testing.assert_array_equal(flipped.get_xdata(), r.f.ravel()[r.flipped[1].ravel()])
    np.testing.assert_array_equal(kept.get_ydata(), r.f_adv[1].ravel()[~r.flipped[1].ravel()])
    fig, ax = plt.subplots()
    figures.ch4.plot_flip_curves(ax, results)
    measured = [c for c in ax.containers]  # one errorbar container per activation
    np.testing.assert_allclose(measured[0].lines[0].get_ydata(), r.flip_rate)
    np.testing.assert_allclose(measured[1].lines[0].get_ydata(), results["tanh"].flip_rate)
    runs = [conditioning.sample_one_step(jax.random.key(d), [d, d], [0.5, 1.0, 2.0],
                                         n_networks=8, n_inputs=4) for d in (16, 32)]
    spread = conditioning.residual_scaling(runs, 1.0)
    assert spread.s == 1.0 and np.isfinite(spread.slope)
    np.testing.assert_allclose(spread.sd, [runs[0].residual_sd(1.0), runs[1].residual_sd(1.0)])
    fig, ax = plt.subplots()
    figures.ch4.plot_residual_spread(ax, {"relu": spread})
    np.testing.assert_allclose(ax.lines[0].get_ydata(), spread.sd)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), spread.C * spread.dims ** spread.slope)
    matched = {a: conditioning.one_step_samples(p.replace(activation=a), X,
                                                [conditioning.step_for_flip_probability(a, 0.5)])
               for a in ("relu", "tanh")}
    fig = plt.figure()
    figures.ch4.draw_law_frame(fig, matched, "tanh")
    t = matched["tanh"]
    assert fig.axes[0].get_title() == (f"tanh, s = {t.s[0]:.2f}: flipped {t.flip_rate[0]:.3f} "
                                       f"(predicted {t.predicted_flip_rate()[0]:.3f})")
    limits = fig.axes[0].get_xlim(), fig.axes[0].get_ylim()
    fig = plt.figure()
    figures.ch4.draw_law_frame(fig, matched, "relu")
    np.testing.assert_allclose((fig.axes[0].get_xlim(), fig.axes[0].get_ylim()), limits)  # fixed axes
    fig, ax = plt.subplots()
    figures.ch4.plot_flip_deviation(ax, results)
    np.testing.assert_allclose(ax.containers[0].lines[0].get_ydata(),
                               r.flip_rate - r.predicted_flip_rate())
    assert ax.containers[0].lines[0].get_color() == figures.ch4.ACTIVATION_COLORS["relu"]
    fig = plt.figure()
    ind = conditioning.independence_samples(jax.random.key(2), p, X[0, 0])
    figures.ch4.plot_independence(fig, ind)
    np.testing.assert_array_equal(fig.axes[1].lines[0].get_ydata(), ind.perp_u[:3000])


def test_science_modules_do_not_import_matplotlib():
    import subprocess
    import sys

    code = ("import sys; from mini_adv import conditioning, margin, quadrature; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
