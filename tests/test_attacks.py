import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mini_adv import data, nets
from mini_adv.attacks import Status, ray_flip_distance
from mini_adv.gradients import flip_direction, linearized_distance


def linear_net(key, d):
    """f(x) = ⟨w, x⟩ as an MLPParams: identity activation, one hidden unit, readout 1."""
    w = jax.random.normal(key, (d, 1))
    return nets.MLPParams(kernels=(w,), readout=jnp.ones(1), activation="identity")


def test_linear_model_minimal_distance_recovered(fresh_key):
    k1, k2 = jax.random.split(fresh_key)
    d = 200
    p = linear_net(k1, d)
    X = data.sphere(k2, 64, d)
    res = ray_flip_distance(p, X, flip_direction(p, X), max_distance=3 * math.sqrt(d))
    exact = jnp.abs(X @ p.kernels[0][:, 0]) / jnp.linalg.norm(p.kernels[0])
    assert bool(jnp.all(res.flipped))
    # float32 resolves x + t u only to about eps·‖x‖, hence the small absolute tolerance
    np.testing.assert_allclose(res.distance, exact, rtol=1e-5, atol=2e-6 * math.sqrt(d))
    np.testing.assert_allclose(linearized_distance(p, X), exact, rtol=1e-5)


def test_reported_norm_is_actual_and_flips_are_verified(fresh_key):
    k1, k2, k3 = jax.random.split(fresh_key, 3)
    d = 64
    p = nets.init_params(k1, [d, 64, 32])
    X = data.sphere(k2, 128, d)
    U = data.sphere(k3, 128, d, radius=1.0)
    res = ray_flip_distance(p, X, U, max_distance=2 * math.sqrt(d))
    np.testing.assert_allclose(res.delta_norm, jnp.linalg.norm(res.x_adv - X, axis=-1), rtol=1e-6)
    f_clean = nets.apply(p, X)
    f_adv = nets.apply(p, res.x_adv)
    np.testing.assert_array_equal(np.asarray(res.flipped), np.asarray(f_clean * f_adv < 0))
    assert 0 < int(res.flipped.sum()) < 128  # some random rays flip, some do not
    assert bool(jnp.all(jnp.isinf(res.distance[~res.flipped])))
    assert bool(jnp.all(res.delta_norm[~res.flipped] == 0))
    assert bool(jnp.all(res.status[res.flipped] == Status.FLIPPED))
    assert bool(jnp.all(res.status[~res.flipped] == Status.NO_FLIP))
    assert not bool(jnp.any(jnp.isnan(res.distance)))
    # the reported crossing is the first one: 1 % before it, the sign is still that of f(x)
    # (closer than that, float32 rounding makes f chatter around 0 when |f(x)| is tiny)
    t = res.distance[res.flipped]
    Ud = U[res.flipped] / jnp.linalg.norm(U[res.flipped], axis=-1, keepdims=True)
    before = nets.apply(p, X[res.flipped] + (t * (1 - 1e-2))[:, None] * Ud)
    assert bool(jnp.all(before * f_clean[res.flipped] > 0))


def test_invariant_to_rescaling_the_weights(fresh_key):
    k1, k2 = jax.random.split(fresh_key)
    p = nets.init_params(k1, [32, 32, 16])
    X = data.sphere(k2, 32, 32)
    U = flip_direction(p, X)
    scaled = p.replace(kernels=tuple(3.0 * k for k in p.kernels), readout=0.1 * p.readout)
    a = ray_flip_distance(p, X, U, max_distance=10.0)
    b = ray_flip_distance(scaled, X, U, max_distance=10.0)
    np.testing.assert_allclose(a.distance, b.distance, rtol=1e-5, atol=2e-6 * math.sqrt(32))


def test_zero_directions_and_zero_outputs_are_reported_not_flipped():
    p = nets.init_params(jax.random.key(0), [8, 8])
    X = data.sphere(jax.random.key(1), 3, 8)
    U = jnp.ones((3, 8)).at[1].set(0.0)
    res = ray_flip_distance(p, X, U, max_distance=5.0)
    assert int(res.status[1]) == Status.ZERO_DIRECTION and not bool(res.flipped[1])
    dead = p.replace(readout=jnp.zeros_like(p.readout))
    res = ray_flip_distance(dead, X, U, max_distance=5.0)
    assert bool(jnp.all(res.status == Status.ZERO_OUTPUT)) and not bool(res.flipped.any())
    assert res.counts()["ZERO_OUTPUT"] == 3
    # gradient directions of a dead network are zero vectors, not NaN
    assert bool(jnp.all(flip_direction(dead, X) == 0))


@pytest.mark.parametrize("kwargs,msg", [
    ({"max_distance": 0.0}, "max_distance"), ({"max_distance": -1.0}, "max_distance"),
    ({"max_distance": float("inf")}, "max_distance"), ({"max_distance": 1.0, "rtol": 0.0}, "rtol"),
    ({"max_distance": 1.0, "grid_size": 1}, "grid_size"),
])
def test_bad_budgets(kwargs, msg):
    p = nets.init_params(jax.random.key(0), [4, 4])
    X = jnp.ones((2, 4))
    with pytest.raises(ValueError, match=msg):
        ray_flip_distance(p, X, X, **kwargs)


def test_bad_shapes_and_nan():
    p = nets.init_params(jax.random.key(0), [4, 4])
    X = jnp.ones((2, 4))
    with pytest.raises(ValueError, match="directions must have the shape"):
        ray_flip_distance(p, X, jnp.ones((3, 4)), max_distance=1.0)
    with pytest.raises(ValueError, match="NaN or inf"):
        ray_flip_distance(p, X, X.at[0, 0].set(jnp.nan), max_distance=1.0)
    with pytest.raises(ValueError, match="NaN or inf"):
        ray_flip_distance(p, X.at[0, 0].set(jnp.inf), X, max_distance=1.0)
    with pytest.raises(ValueError, match=r"\(B, d\) with d = 4"):
        ray_flip_distance(p, jnp.ones((2, 5)), jnp.ones((2, 5)), max_distance=1.0)
