import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mini_adv import data, nets
from mini_adv.activations import ACTIVATIONS
from mini_adv.gradients import euler_residual, linearized_distance, value_and_input_grad


def test_shapes_single_and_batched():
    net = nets.RandomMLP([20, 10, 5], rngs=nnx.Rngs(0))
    x = data.sphere(jax.random.key(1), 7, 20)
    assert net(x).shape == (7,)
    assert net(x[0]).shape == ()
    np.testing.assert_allclose(net(x)[3], net(x[3]), rtol=1e-6)
    p = net.params()
    assert p.widths == (20, 10, 5) and p.num_networks is None
    np.testing.assert_allclose(nets.apply(p, x), net(x), rtol=1e-6)


@pytest.mark.parametrize("scale,expected", [("he", 2.0), ("lecun", 1.0), (0.5, 0.25)])
def test_weight_variance_matches_scale_squared_over_fan_in(scale, expected):
    fan_in, fan_out = 400, 300
    p = nets.init_params(jax.random.key(3), [fan_in, fan_out, 200], weight_scale=scale)
    for k in p.kernels:
        n = k.size
        var = float(jnp.var(k))
        target = expected / k.shape[0]
        # sampling std of the variance estimate of a Gaussian: target * sqrt(2/n); allow 5 sigma
        assert abs(var - target) < 5 * target * math.sqrt(2 / n), (var, target)
        assert abs(float(jnp.mean(k))) < 5 * math.sqrt(target / n)


def test_weights_are_untruncated_gaussian():
    p = nets.init_params(jax.random.key(4), [500, 500])
    z = np.asarray(p.kernels[0]) * math.sqrt(500 / 2.0)
    # a truncated normal (Flax's default) has no mass beyond 2 sigma; N(0,1) has 4.55 %
    tail = np.mean(np.abs(z) > 2.0)
    assert 0.04 < tail < 0.051


@pytest.mark.parametrize("readout", ["gaussian", "rademacher"])
def test_readout_is_mean_zero_with_variance_one_over_width(readout):
    h = 64
    p = nets.init_params(jax.random.key(5), [10, h], readout=readout, n=2000)
    a = np.asarray(p.readout)  # (2000, h)
    assert a.shape == (2000, h)
    n = a.size
    assert abs(a.mean()) < 5 * math.sqrt(1 / h / n)
    np.testing.assert_allclose(a.var(), 1 / h, rtol=0.02)
    # readouts are symmetric: f and -f equally likely, so sign f(x) is a fair coin
    x = data.sphere(jax.random.key(6), 1, 10)[0]
    f = jax.vmap(nets.apply, in_axes=(0, None))(p, x)
    assert 0.45 < float(jnp.mean(f > 0)) < 0.55


def test_same_seed_same_outputs_different_seed_different():
    x = data.sphere(jax.random.key(0), 4, 30)
    a = nets.RandomMLP([30, 20, 10], rngs=nnx.Rngs(42))(x)
    b = nets.RandomMLP([30, 20, 10], rngs=nnx.Rngs(42))(x)
    c = nets.RandomMLP([30, 20, 10], rngs=nnx.Rngs(43))(x)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(a, c)
    np.testing.assert_array_equal(np.asarray(data.sphere(jax.random.key(9), 3, 5)),
                                  np.asarray(data.sphere(jax.random.key(9), 3, 5)))


def test_stacked_networks_are_independent_draws_of_the_same_law():
    p = nets.init_params(jax.random.key(7), [16, 8, 4], n=5)
    assert p.num_networks == 5 and p.kernels[0].shape == (5, 16, 8)
    single = nets.init_params(jax.random.split(jax.random.key(7), 5)[2], [16, 8, 4])
    np.testing.assert_allclose(p.kernels[1][2], single.kernels[1])
    x = data.sphere(jax.random.key(8), 3, 16)
    f = jax.vmap(nets.apply, in_axes=(0, None))(p, x)
    assert f.shape == (5, 3)
    with pytest.raises(ValueError, match="stack of 5 networks"):
        nets.apply(p, x)


@pytest.mark.parametrize("widths", [[50, 50], [100, 60, 30], [64, 64, 64, 64, 64]])
def test_euler_identity_for_bias_free_relu(widths):
    p = nets.init_params(jax.random.key(len(widths)), widths)
    X = data.sphere(jax.random.key(11), 32, widths[0])
    f, g = value_and_input_grad(p, X)
    r = euler_residual(p, X)
    bound = 1e-4 * jnp.linalg.norm(g, axis=-1) * jnp.linalg.norm(X, axis=-1)
    assert bool(jnp.all(jnp.abs(r) <= bound)), float(jnp.max(jnp.abs(r) / bound))


def test_euler_identity_fails_with_bias_or_tanh():
    X = data.sphere(jax.random.key(12), 32, 40)
    for kw in ({"bias": True}, {"activation": "tanh"}):
        p = nets.init_params(jax.random.key(13), [40, 40], **kw)
        _, g = value_and_input_grad(p, X)
        r = euler_residual(p, X)
        rel = jnp.abs(r) / (jnp.linalg.norm(g, axis=-1) * jnp.linalg.norm(X, axis=-1))
        assert float(jnp.median(rel)) > 1e-2, kw


def test_every_named_activation_builds_and_runs():
    X = data.sphere(jax.random.key(14), 3, 8)
    for name in ACTIVATIONS:
        p = nets.init_params(jax.random.key(15), [8, 6], activation=name)
        assert bool(jnp.all(jnp.isfinite(nets.apply(p, X))))
    p = nets.init_params(jax.random.key(15), [8, 6], activation=jnp.cos)
    assert nets.apply(p, X).shape == (3,)


def test_linearized_distance_is_inf_not_nan_for_dead_network():
    p = nets.init_params(jax.random.key(0), [10, 5])
    dead = p.replace(readout=jnp.zeros_like(p.readout))
    X = data.sphere(jax.random.key(1), 4, 10)
    dist = linearized_distance(dead, X)
    assert bool(jnp.all(jnp.isinf(dist)))


def test_sphere_norms_and_uniform_directions():
    X = data.sphere(jax.random.key(2), 4000, 50)
    np.testing.assert_allclose(jnp.linalg.norm(X, axis=-1), math.sqrt(50), rtol=1e-5)
    assert float(jnp.max(jnp.abs(jnp.mean(X, axis=0)))) < 5 / math.sqrt(4000)
    np.testing.assert_allclose(jnp.linalg.norm(data.sphere(jax.random.key(3), 3, 9, radius=2.5), axis=-1), 2.5,
                               rtol=1e-5)


# ---- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize("widths,msg", [
    ([10], "at least 2 entries"), ([], "at least 2 entries"), ([10, 0], "positive integer"),
    ([10, -3], "positive integer"), ([10, 2.5], "positive integer"), (5, "sequence"),
])
def test_bad_widths(widths, msg):
    with pytest.raises(ValueError, match=msg):
        nets.init_params(jax.random.key(0), widths)
    with pytest.raises(ValueError, match=msg):
        nets.RandomMLP(widths, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("kwargs,msg", [
    ({"activation": "swishy"}, "unknown activation"), ({"weight_scale": "xavier"}, "unknown weight_scale"),
    ({"weight_scale": -1.0}, "positive float"), ({"weight_scale": float("nan")}, "positive float"),
    ({"readout": "uniform"}, "unknown readout"), ({"n": 0}, "positive integer"),
])
def test_bad_init_options(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        nets.init_params(jax.random.key(0), [4, 3], **kwargs)


def test_bad_inputs_raise():
    net = nets.RandomMLP([6, 4], rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"shape \(d,\) or \(B, d\) with d = 6"):
        net(jnp.ones((3, 5)))
    with pytest.raises(ValueError, match="shape"):
        net(jnp.ones((2, 3, 6)))
    for bad in (jnp.nan, jnp.inf, -jnp.inf):
        with pytest.raises(ValueError, match="NaN or inf"):
            net(jnp.ones((2, 6)).at[1, 2].set(bad))
        with pytest.raises(ValueError, match="NaN or inf"):
            value_and_input_grad(net, jnp.ones((2, 6)).at[0, 0].set(bad))
    with pytest.raises(ValueError, match=r"\(B, d\) with d = 6"):
        value_and_input_grad(net, jnp.ones(6))
    with pytest.raises(ValueError, match="expected a network"):
        value_and_input_grad(object(), jnp.ones((1, 6)))


@pytest.mark.parametrize("n,d,radius", [(0, 3, None), (3, 0, None), (2, 3, -1.0), (2, 3, float("inf"))])
def test_bad_sphere_arguments(n, d, radius):
    with pytest.raises(ValueError):
        data.sphere(jax.random.key(0), n, d, radius)
