"""Chapter 1's quantitative claims, asserted on fresh random draws."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mini_adv import data, nets, rays


def test_linear_predictions_match_monte_carlo(fresh_key):
    kappa = 2.0
    z0, z = jax.random.normal(fresh_key, (2, 400_000))
    right_way = jax.random.bernoulli(jax.random.fold_in(fresh_key, 1), 0.5, z.shape)
    flips = right_way & (jnp.abs(z0) <= kappa * jnp.abs(z))
    assert abs(float(flips.mean()) - rays.linear_flip_probability(kappa)) < 0.005
    med = float(jnp.median(1.0 / jnp.abs(z[flips])))
    assert abs(med / rays.linear_ratio_median(kappa) - 1) < 0.01
    assert rays.linear_flip_probability(1.0) == pytest.approx(0.25)


def test_linear_model_flip_statistics_at_finite_d(fresh_key, linear_net):
    """The ray experiment on an exactly linear network reproduces the closed forms."""
    d = 256
    k1, k2, k3 = jax.random.split(fresh_key, 3)
    p = linear_net(k1, d)
    X = data.sphere(k2, 4000, d)
    U = data.sphere(k3, 4000, d, radius=1.0)
    res = rays.ray_flip_kernel(p, X, U, jnp.asarray(2.0 * math.sqrt(d)))
    assert abs(float(res.flipped.mean()) - rays.linear_flip_probability(2.0)) < 0.03


def test_chapter1_scaling_random_over_gradient_distance_grows_like_sqrt_d(fresh_key):
    """Ratio of random-ray to gradient-ray flip distance ∝ √d (log-log slope ≈ 1/2)."""
    dims = [64, 256, 1024]
    # 24 networks × 8 inputs: networks are the independent replicates (each has its own offset)
    out = rays.sweep_rays(fresh_key, dims, n_networks=24, n_inputs=8, n_rays=8)
    slope, intercept = np.polyfit(np.log(out.d), np.log(out.ratio_median), 1)
    # Bands from 30 seeds (0–29) of this exact call, mean ± s.d. per d = 64, 256, 1024; each
    # band is 5 s.d. The slope: 0.525 ± 0.021 (range 0.482 … 0.563)
    assert 0.42 <= slope <= 0.63, (slope, out.ratio_median)
    # near the linear model's constant C(2)·√d at every d. The network bends, so the ratio
    # sits above the linear model's by a bias that grows with d: ratio/pred = 1.068 ± 0.052,
    # 1.127 ± 0.057, 1.143 ± 0.040 (the linear model itself, ratio/pred = 1, is inside: this
    # is a regression band; a ratio without the √d, or with 1/|Z| squared, is far outside)
    pred = rays.linear_ratio_median(2.0) * np.sqrt(out.d)
    mean, sd = np.array([1.068, 1.127, 1.143]), np.array([0.052, 0.057, 0.040])
    assert np.all(np.abs(out.ratio_median / pred - mean) < 5 * sd), out.ratio_median / pred
    # the gradient ray nearly always flips at these sizes (30 seeds: 0.978 ± 0.016 at d = 64,
    # always 1 above; earlier, 2 seeds in 30 missed one input of 192 at d = 256)
    assert np.all(out.p_flip_gradient[1:] >= 0.98), out.p_flip_gradient
    # at slightly more than the linearised distance: 1.089 ± 0.017, 1.051 ± 0.008,
    # 1.026 ± 0.003 (the excess falls with d: the network is locally linear)
    mean, sd = np.array([1.089, 1.051, 1.026]), np.array([0.017, 0.0079, 0.0033])
    assert np.all(np.abs(out.grad_over_linear - mean) < 5 * sd), out.grad_over_linear
    # random rays fail often: the fraction that flips within 2‖x‖ is near arctan(2)/π ≈ 0.35,
    # a little below it (the network bends over distances of order ‖x‖): 0.316 ± 0.027,
    # 0.305 ± 0.031, 0.307 ± 0.026 (a ray counted in both directions would give about 0.62)
    mean, sd = np.array([0.316, 0.305, 0.307]), np.array([0.027, 0.031, 0.026])
    assert np.all(np.abs(out.p_flip_random - mean) < 5 * sd), out.p_flip_random
    # every flip the experiment counted is finite and positive (verified sign changes)
    for r in out.raw:
        g = np.asarray(r.gradient)
        assert np.all(g[np.isfinite(g)] > 0)


def test_gradient_distance_is_order_norm_over_sqrt_d(fresh_key):
    # networks are the independent replicates: 128 networks × 4 inputs (with 32 × 16, the
    # same number of inputs, the s.d. over seeds was 0.069 instead of 0.041)
    r = rays.compare_rays(fresh_key, 512, n_networks=128, n_inputs=4, n_rays=1)
    s = r.summary()
    # √d · E[dist/‖x‖] → E|Z| = √(2/π) ≈ 0.80 (the constant of chapter 2). Over 30 seeds
    # (0–29) at this size: 0.860 ± 0.041 (s.d.; range 0.793 … 0.950); the band is 5 s.d.
    assert abs(s["grad_rel_sqrt_d"] - 0.860) < 0.21, s
    # the standard error over networks matches that spread
    assert 0.5 * 0.041 < s["grad_rel_sqrt_d_se"] < 2 * 0.041, s


def test_compare_rays_same_key_same_numbers():
    a = rays.compare_rays(jax.random.key(3), 32, n_networks=2, n_inputs=4, n_rays=2)
    b = rays.compare_rays(jax.random.key(3), 32, n_networks=2, n_inputs=4, n_rays=2)
    np.testing.assert_array_equal(np.asarray(a.random), np.asarray(b.random))
    assert a.d == 32 and a.summary()["d"] == 32  # stored, not recovered from ‖x‖


@pytest.mark.parametrize("kwargs,msg", [
    ({"d": 0}, "d must be"), ({"d": 8, "n_rays": 0}, "n_rays"), ({"d": 8, "kappa": -1.0}, "kappa"),
    ({"d": 8, "hidden": ()}, "hidden"), ({"d": 8, "hidden": (1.0, 0.0)}, "hidden"),
])
def test_compare_rays_bad_input(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        rays.compare_rays(jax.random.key(0), **kwargs)


def test_plane_slice_geometry_and_errors():
    d = 16
    p = nets.init_params(jax.random.key(0), [d, d])
    x = data.sphere(jax.random.key(1), 1, d)[0]
    v = data.sphere(jax.random.key(2), 1, d)[0]
    A, B, F = rays.plane_slice(p, x, v, extent=(0.0, 2.0, -1.0, 1.0), resolution=21)
    assert A.shape == B.shape == F.shape == (21, 21)
    np.testing.assert_allclose(F[10, 10], float(nets.apply(p, x)), rtol=1e-4)  # (1, 0) is x
    with pytest.raises(ValueError, match="parallel"):
        rays.plane_slice(p, x, 2 * x)
    with pytest.raises(ValueError, match="d = 16"):
        rays.plane_slice(p, x[:5], v)


def test_plane_slice_rejects_a_zero_input_and_an_empty_grid():
    """x = 0 used to give an all-NaN grid (and passed the parallel check); resolution 0 an
    empty one."""
    d = 16
    p = nets.init_params(jax.random.key(0), [d, d])
    v = data.sphere(jax.random.key(2), 1, d)[0]
    with pytest.raises(ValueError, match="zero vector"):
        rays.plane_slice(p, jnp.zeros(d), v)
    with pytest.raises(ValueError, match="resolution must be a positive integer"):
        rays.plane_slice(p, v, 2 * v + 1.0, resolution=0)


def test_sweep_rays_records_each_d_and_folds_the_key_per_d():
    """Key first, fold_in(key, d) per d: adding a d leaves the others' draws unchanged."""
    kw = dict(n_networks=2, n_inputs=4, n_rays=2)
    key = jax.random.key(0)
    a = rays.sweep_rays(key, [8, 16], **kw)
    b = rays.sweep_rays(key, [16, 32], **kw)
    assert isinstance(a, rays.RaySweep) and a.d.tolist() == [8, 16] and a.d.dtype.kind == "i"
    assert a.kappa == 2.0 and [r.d for r in a.raw] == [8, 16]
    np.testing.assert_array_equal(np.asarray(a.raw[1].random), np.asarray(b.raw[0].random))
    assert a.ratio_median[1] == b.ratio_median[0]
    with pytest.raises(ValueError, match="dims"):
        rays.sweep_rays(key, [])


def test_numbers_may_be_numpy_or_jax_scalars():
    assert rays.linear_flip_probability(np.float32(1.0)) == pytest.approx(0.25)
    assert rays.linear_flip_probability(jnp.asarray(1.0)) == pytest.approx(0.25)
    r = rays.compare_rays(jax.random.key(1), np.int64(8), n_networks=np.int32(2), n_inputs=2,
                          n_rays=1, kappa=jnp.asarray(2.0))
    assert r.d == 8 and r.random.shape == (2, 2, 1)
    with pytest.raises(ValueError, match="kappa"):
        rays.linear_flip_probability(True)


def test_typical_input_is_the_median_of_its_candidates():
    d = 64
    p = nets.init_params(jax.random.key(0), [d, d, d])
    key = jax.random.key(1)
    x = rays.typical_input(key, p, d, n_candidates=15)
    X = data.sphere(key, 15, d)  # the same candidates
    f, g = rays.value_and_input_grad_kernel(p, X)
    rel = np.asarray(jnp.abs(f) / (jnp.linalg.norm(g, axis=1) * jnp.linalg.norm(X, axis=1)))
    i = int(np.argmin(np.abs(np.asarray(X) - np.asarray(x)).sum(axis=1)))
    np.testing.assert_allclose(np.asarray(x), np.asarray(X[i]))
    assert rel[i] == np.median(rel)
    with pytest.raises(ValueError, match="odd"):
        rays.typical_input(key, p, d, n_candidates=4)
    with pytest.raises(ValueError):
        rays.typical_input(key, p, d + 1)


def test_summary_brackets_the_median_ratio_with_a_bootstrap_interval():
    out = rays.compare_rays(jax.random.key(3), 32, n_networks=6, n_inputs=4, n_rays=4)
    s = out.summary()
    assert s["ratio_median_lo"] <= s["ratio_median"] <= s["ratio_median_hi"]
    assert s == out.summary()  # a fixed bootstrap seed: the same result gives the same interval

