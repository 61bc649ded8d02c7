import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mini_adv import data, gradients, nets, runtime
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
    ({"weight_scale": True}, "positive float"), ({"weight_scale": np.array([1.0, 2.0])}, "positive float"),
    ({"readout": "uniform"}, "unknown readout"), ({"n": 0}, "positive integer"),
    ({"n": 2.0}, "positive integer"), ({"n": True}, "positive integer"),
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


# ---- the one forward pass, dtypes, recorded scale --------------------------------------

@pytest.mark.parametrize("bias", [False, True])
def test_forward_returns_f_and_every_preactivation(bias):
    p = nets.init_params(jax.random.key(20), [12, 8, 6, 4], bias=bias, activation="tanh")
    X = data.sphere(jax.random.key(21), 5, 12)
    f, zs = nets.forward(p, X)
    assert [z.shape for z in zs] == [(5, 8), (5, 6), (5, 4)]
    b = p.biases if bias else (0.0, 0.0, 0.0)
    np.testing.assert_allclose(zs[0], X @ p.kernels[0] + b[0], rtol=1e-6, atol=1e-6)
    for i in (1, 2):
        np.testing.assert_allclose(zs[i], jnp.tanh(zs[i - 1]) @ p.kernels[i] + b[i], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(f, jnp.tanh(zs[2]) @ p.readout, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(f, nets.apply(p, X))                    # apply is forward's f
    np.testing.assert_array_equal(jax.jit(nets.apply)(p, X), jax.jit(lambda q, x: nets.forward(q, x)[0])(p, X))
    f1, zs1 = nets.forward(p, X[2])
    assert f1.shape == () and [z.shape for z in zs1] == [(8,), (6,), (4,)]
    np.testing.assert_allclose(f1, f[2], rtol=1e-6)
    stack = nets.init_params(jax.random.key(22), [12, 8], n=3)
    fs, zss = jax.vmap(nets.forward, in_axes=(0, None))(stack, X)
    assert fs.shape == (3, 5) and zss[0].shape == (3, 5, 8)


def test_apply_takes_array_likes_and_casts_to_the_weights_dtype():
    p = nets.init_params(jax.random.key(23), [3, 4])
    x = [[0.5, -1.0, 2.0], [1.0, 0.0, 0.0]]
    np.testing.assert_array_equal(nets.apply(p, x), nets.apply(p, jnp.asarray(x, jnp.float32)))
    np.testing.assert_array_equal(nets.apply(p, np.asarray(x)), nets.apply(p, jnp.asarray(x, jnp.float32)))
    xb = jnp.asarray(x, jnp.bfloat16)
    out = nets.apply(p, xb)
    assert out.dtype == jnp.float32
    np.testing.assert_array_equal(out, nets.apply(p, xb.astype(jnp.float32)))
    for bad, msg in ((jnp.ones((2, 3), jnp.int32), "real floating-point numbers; got dtype int32"),
                     ([[1, 2, 3]], "got dtype int"), ("abc", "shape"), (object(), "must be an array"),
                     ([[1.0, 2.0], [3.0]], "must be an array"), (jnp.ones((2, 3), bool), "dtype bool")):
        with pytest.raises(ValueError, match=msg):
            nets.apply(p, bad)


def test_apply_names_non_finite_inputs_and_weights_but_not_overflow():
    p = nets.init_params(jax.random.key(24), [4, 3])
    with pytest.raises(ValueError, match="input x contains NaN or inf"):
        nets.apply(p, jnp.ones(4).at[2].set(jnp.inf))
    bad = p.replace(readout=p.readout.at[1].set(jnp.nan))
    for fn in (nets.apply, lambda q, x: nets.forward(q, x)[0]):
        with pytest.raises(ValueError, match="the network's weights contain NaN or inf"):
            fn(bad, jnp.ones((2, 4)))
    # under jit the values are unknown: no check, the NaN propagates (the kernels' contract)
    assert bool(jnp.all(jnp.isnan(jax.jit(nets.apply)(bad, jnp.ones((2, 4))))))
    # a finite network that overflows is evaluated, not rejected
    sq = nets.init_params(jax.random.key(25), [4, 3, 3, 3], activation="square")
    big = nets.apply(sq, jnp.full((1, 4), 1e12))
    assert not bool(jnp.all(jnp.isfinite(big)))


@pytest.mark.parametrize("readout", ["gaussian", "rademacher"])
@pytest.mark.parametrize("bias", [False, True])
def test_every_weight_follows_the_default_float_dtype(readout, bias):
    """CODE-27: under x64 the Rademacher readout was float32 next to float64 kernels."""
    p = nets.init_params(jax.random.key(26), [5, 4, 3], readout=readout, bias=bias)
    assert {a.dtype for a in jax.tree.leaves(p)} == {jnp.dtype(jnp.float32)}
    with runtime.float64():
        p64 = nets.init_params(jax.random.key(26), [5, 4, 3], readout=readout, bias=bias)
        assert {a.dtype for a in jax.tree.leaves(p64)} == {jnp.dtype(jnp.float64)}
        if readout == "rademacher":
            np.testing.assert_array_equal(np.abs(np.asarray(p64.readout)), 1 / math.sqrt(3))
        net64 = nets.RandomMLP([5, 4], readout=readout, rngs=nnx.Rngs(0))
        assert net64.params().readout.dtype == jnp.float64
        assert net64(data.sphere(jax.random.key(1), 2, 5)).dtype == jnp.float64


@pytest.mark.parametrize("scale,value", [("he", math.sqrt(2.0)), ("lecun", 1.0), (0.5, 0.5),
                                         (np.float32(0.25), 0.25), (jnp.asarray(3.0), 3.0)])
def test_the_weight_scale_is_recorded_as_a_static_field(scale, value):
    p = nets.init_params(jax.random.key(27), [6, 5], weight_scale=scale)
    assert p.weight_scale == pytest.approx(value) and type(p.weight_scale) is float
    assert nets.init_params(jax.random.key(27), [6, 5], weight_scale=scale, n=2).weight_scale == p.weight_scale
    assert nets.RandomMLP([6, 5], weight_scale=scale, rngs=nnx.Rngs(0)).params().weight_scale == p.weight_scale
    assert len(jax.tree.leaves(p)) == 2                        # not a leaf: kernels and readout only
    assert jax.jit(lambda q: q)(p).weight_scale == p.weight_scale  # kept through jit
    assert p.replace(readout=p.readout * 2).weight_scale == p.weight_scale
    assert nets.resolve_weight_scale(scale) == pytest.approx(value)


def test_hand_built_parameters_have_no_recorded_scale():
    p = nets.MLPParams(kernels=(jnp.ones((2, 1)),), readout=jnp.ones(1), activation="identity")
    assert p.weight_scale is None
    np.testing.assert_allclose(nets.apply(p, jnp.array([[1.0, 2.0]])), [3.0])


def test_numpy_and_jax_integers_are_sizes():
    """CODE-28: init_params(key, np.array([4, 3])) and n=np.int64(2) used to be rejected."""
    ref = nets.init_params(jax.random.key(28), [4, 3])
    for widths in (np.array([4, 3]), jnp.array([4, 3]), (np.int64(4), np.int32(3))):
        p = nets.init_params(jax.random.key(28), widths)
        assert p.widths == (4, 3)
        np.testing.assert_array_equal(p.kernels[0], ref.kernels[0])
    for n in (np.int64(2), jnp.asarray(2), 2):
        assert nets.init_params(jax.random.key(28), [4, 3], n=n).num_networks == 2
    assert nets.RandomMLP(np.array([4, 3]), rngs=nnx.Rngs(0)).widths == (4, 3)


@pytest.mark.parametrize("key", [0, np.int64(1), None])
def test_an_int_seed_is_not_a_key(key):
    with pytest.raises(ValueError, match=r"key must be a JAX PRNG key, e\.g\. jax\.random\.key\(0\)"):
        nets.init_params(key, [4, 3])


def test_sphere_batches_is_one_batch_per_network_of_the_same_points():
    key = jax.random.key(29)
    X = data.sphere_batches(key, 4, 3, 7)
    assert X.shape == (4, 3, 7)
    np.testing.assert_array_equal(X, data.sphere(key, 12, 7).reshape(4, 3, 7))
    np.testing.assert_allclose(jnp.linalg.norm(X, axis=-1), math.sqrt(7), rtol=1e-6)
    R = data.sphere_batches(key, 2, 3, 7, radius=np.float32(2))
    np.testing.assert_allclose(jnp.linalg.norm(R, axis=-1), 2.0, rtol=1e-6)


def test_sphere_takes_numpy_and_jax_numbers():
    """CODE-28: sphere(radius=np.float32(2)) used to be rejected."""
    for r in (np.float32(2), jnp.asarray(2.0), 2):
        X = data.sphere(jax.random.key(30), np.int64(3), 5, radius=r)
        np.testing.assert_allclose(jnp.linalg.norm(X, axis=-1), 2.0, rtol=1e-6)


def test_linearized_distance_from_is_the_formula():
    f = jnp.array([2.0, -3.0, 0.0, 1.0])
    g = jnp.array([[3.0, 4.0], [0.0, 1.5], [1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(gradients.linearized_distance_from(f, g), [0.4, 2.0, 0.0, np.inf])
    np.testing.assert_allclose(gradients.flip_direction_from(f, g),
                               [[-0.6, -0.8], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    # for a linear network it is the exact distance to the boundary
    w = jnp.array([[1.0], [2.0], [-2.0]])
    p = nets.MLPParams(kernels=(w,), readout=jnp.ones(1), activation="identity")
    X = jnp.array([[1.0, 1.0, 1.0], [0.0, -3.0, 0.0]])
    np.testing.assert_allclose(gradients.linearized_distance(p, X), [1 / 3, 2.0], rtol=1e-6)
    for bad_f, bad_g in ((f[:, None], g), (f, g[0]), (f[:3], g)):
        with pytest.raises(ValueError, match=r"f of shape \(B,\) and gradients g of shape \(B, d\)"):
            gradients.linearized_distance_from(bad_f, bad_g)
        with pytest.raises(ValueError, match=r"shape \(B,\)"):
            gradients.flip_direction_from(bad_f, bad_g)
