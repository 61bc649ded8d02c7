"""Chapter 6's package parts: data.digits, data.embed, realdata, rays.compare_rays_on, the
train_kernel continuation, figures.ch6 and checks.check_off_share (fixed keys throughout)."""

import math

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest

from mini_adv import checks, data, gradients, margin, nets, rays, realdata

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def digits():
    return data.digits((3, 8)), data.digits((3, 8), split="test")


# ---- data.digits, data.digit_pixels, data.embed ---------------------------------------------

def test_digits_are_centred_rows_of_norm_sqrt_d_with_a_fixed_stratified_split(digits):
    (X, y), (Xt, yt) = digits
    assert X.shape == (249, 64) and Xt.shape == (108, 64) and X.dtype == jnp.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 8.0, rtol=1e-6)
    assert set(np.unique(y)) == {-1.0, 1.0} and set(np.unique(yt)) == {-1.0, 1.0}
    P, c = data.digit_pixels((3, 8))
    centred = np.asarray(X) * c[:, None]
    np.testing.assert_allclose(centred.mean(axis=0), 0.0, atol=1e-5)  # centred by the training mean
    np.testing.assert_allclose(P - centred, np.broadcast_to((P - centred)[0], P.shape), atol=1e-4)
    # stratified: each class keeps its share in both splits (183 threes and 174 eights in all)
    assert abs(np.mean(y > 0) - np.mean(yt > 0)) < 0.02
    X2, _ = data.digits((3, 8))
    np.testing.assert_array_equal(np.asarray(X), np.asarray(X2))
    X3, _ = data.digits((3, 8), seed=1)
    assert not np.array_equal(np.asarray(X), np.asarray(X3))
    Xs, ys = data.digits((8, 3))
    assert Xs.shape == X.shape and np.mean(ys > 0) < 0.5  # classes[0] is +1: now the eights


@pytest.mark.parametrize("kwargs, match", [
    (dict(classes=(3, 3)), "two different digits"),
    (dict(classes=(3, 10)), "two different digits"),
    (dict(classes=(3,)), "two different digits"),
    (dict(classes="38"), "two different digits"),
    (dict(classes=(3.5, 8)), "two different digits"),
    (dict(split="validation"), "split must be one of"),
    (dict(test_fraction=0.0), "test_fraction"),
    (dict(test_fraction=1.0), "test_fraction"),
    (dict(seed=-1), "seed"),
])
def test_digits_reject_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.digits(**kwargs)
    with pytest.raises(ValueError, match=match):
        data.digit_pixels(**kwargs)


def test_embed_is_an_isometry_onto_the_projectors_range(digits):
    (X, _), _ = digits
    Z, P = data.embed(X, 200, jax.random.key(0))
    assert Z.shape == (249, 200) and P.shape == (200, 200)
    G, H = np.asarray(X) @ np.asarray(X).T, np.asarray(Z) @ np.asarray(Z).T
    np.testing.assert_allclose(H, G, atol=2e-4 * np.abs(G).max())  # inner products kept
    np.testing.assert_allclose(np.asarray(P @ P), np.asarray(P), atol=1e-5)
    np.testing.assert_allclose(np.asarray(P), np.asarray(P).T, atol=1e-6)
    assert abs(float(jnp.trace(P)) - 64) < 1e-3
    np.testing.assert_allclose(np.asarray(Z @ P), np.asarray(Z), atol=1e-4)
    Z2, _ = data.embed(X, 200, jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(Z), np.asarray(Z2))
    Z64, P64 = data.embed(X, 64, jax.random.key(1))  # D = d: a rotation, P = I
    np.testing.assert_allclose(np.asarray(P64), np.eye(64), atol=1e-5)


@pytest.mark.parametrize("args, match", [
    ((np.ones((3, 4), np.float32), 3), "at least the data dimension"),
    ((np.ones((3, 4), np.float32), 0), "D must be a positive integer"),
    ((np.ones((3, 4), np.float32), 5.0), "D must be a positive integer"),
    ((np.ones(4, np.float32), 8), r"shape \(n, d\)"),
    ((np.ones((3, 4), np.int32), 8), "floating-point"),
    ((np.full((3, 4), np.nan, np.float32), 8), "NaN or inf"),
])
def test_embed_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        data.embed(*args, jax.random.key(0))
    with pytest.raises(ValueError, match="PRNG key"):
        data.embed(np.ones((3, 4), np.float32), 8, 0)


# ---- realdata -----------------------------------------------------------------------------

def test_minimal_perturbation_keeps_the_shorter_verified_flip(digits):
    (X, _), _ = digits
    net = nets.init_params(jax.random.key(3), [64, 64])
    m = realdata.minimal_perturbation(net, X[:40])
    assert m.flipped.all()
    f0 = np.asarray(nets.apply(net, X[:40]))
    f1 = np.asarray(nets.apply(net, np.asarray(X[:40]) + m.delta))
    assert np.all(f0 * f1 < 0)  # every claimed flip, re-evaluated
    np.testing.assert_allclose(np.linalg.norm(m.delta, axis=1), m.distance, rtol=1e-5)
    np.testing.assert_array_equal(m.distance, np.minimum(m.deepfool, m.flow))
    assert set(m.method) <= {"deepfool", "flow"}


def test_minimal_perturbation_says_no_flip_found_for_a_dead_network(digits):
    (X, _), _ = digits
    net = nets.init_params(jax.random.key(3), [64, 8])
    dead = net.replace(kernels=(-jnp.abs(net.kernels[0]) * 0 - 1.0,))  # every unit off on x ≥ 0
    Xpos = jnp.abs(X[:5])
    m = realdata.minimal_perturbation(dead, Xpos)
    assert not m.flipped.any() and np.all(np.isinf(m.distance)) and set(m.method) == {"none"}
    assert np.all(m.delta == 0)


def test_carry_over_on_a_random_network_matches_the_random_network_predictions(digits):
    _, (Xt, _) = digits
    net = nets.init_params(jax.random.key(4), [64, 128])  # the chapter's widths
    c = realdata.carry_over(jax.random.key(5), net, Xt)
    s, p = c.summary(), realdata.predictions(64, 2.0)
    assert s["euler_max"] < 1e-5
    assert abs(s["linear_over_minimal"] - 1) < 0.1
    assert s["p_flip_gradient"] >= 0.9
    assert 0.5 * p["cos_sqrt_d"] < s["cos_sqrt_d"] < 1.5 * p["cos_sqrt_d"]
    assert abs(p["p_flip_random"] - math.atan(2) / math.pi) < 1e-12
    assert abs(p["minimal_sqrt_d"] - 0.6744897501960817) < 1e-12
    with pytest.raises(ValueError, match="PRNG key"):
        realdata.carry_over(0, net, Xt)
    with pytest.raises(ValueError, match="n_rays"):
        realdata.carry_over(jax.random.key(0), net, Xt, n_rays=0)


def test_class_mean_flips_use_chapter_5s_direction(digits):
    (X, y), (Xt, _) = digits
    net = nets.init_params(jax.random.key(6), [64, 64])
    cm = realdata.class_mean_flips(net, X, y, Xt[:20])
    np.testing.assert_allclose(cm.direction, np.asarray(margin.universal_direction(X, y)), rtol=1e-6)
    assert cm.class_mean.shape == (20,) and np.all(cm.ratio > 0)
    with pytest.raises(ValueError, match="±1"):
        realdata.class_mean_flips(net, X, 2 * y, Xt[:5])


def test_split_perturbation_is_pythagorean_and_checks_shapes():
    Z, P = data.embed(np.asarray(jax.random.normal(jax.random.key(0), (5, 3))), 10, jax.random.key(1))
    delta = np.asarray(jax.random.normal(jax.random.key(2), (7, 10)))
    on, off = realdata.split_perturbation(delta, P)
    np.testing.assert_allclose(on ** 2 + off ** 2, np.sum(delta ** 2, axis=1), rtol=1e-5)
    on_z, off_z = realdata.split_perturbation(np.asarray(Z), P)
    np.testing.assert_allclose(off_z, 0.0, atol=1e-5)  # the data lie on the subspace
    with pytest.raises(ValueError, match=r"\(D, D\)"):
        realdata.split_perturbation(delta, np.eye(9))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        realdata.split_perturbation(delta[0], P)


def test_robust_start_begins_at_the_robust_network_and_checks_sizes():
    run = realdata.robust_start(jax.random.key(0), d=400, n=4, checkpoints=1, steps_per=50)
    assert run.steps.tolist() == [0, 50] and run.universal.shape == (2, 4)
    X, y = data.nearly_orthogonal(jax.random.key(0), 4, 400)
    rob, _ = margin.robust_network(X, y)
    np.testing.assert_allclose(run.universal[0], margin.flip_distances(rob, X, y).universal / 20.0,
                               rtol=1e-5)
    for kwargs, match in [(dict(d=0), "d must"), (dict(n=0), "n must"),
                          (dict(checkpoints=0), "checkpoints"), (dict(steps_per=0), "steps_per"),
                          (dict(lr=0.0), "lr")]:
        base = dict(d=50, n=4, checkpoints=1, steps_per=5) | kwargs
        with pytest.raises(ValueError, match=match):
            realdata.robust_start(jax.random.key(0), **base)


def test_train_kernel_continues_a_run_exactly_from_its_direction_and_log_norm():
    """margin.train_kernel(log_scale=s): K steps then K more equal 2K steps in one call."""
    X, y = data.nearly_orthogonal(jax.random.key(1), 6, 100)
    p0 = margin.robust_params(X, y)
    lr = jnp.asarray(0.1, X.dtype)
    one, rec = margin.train_kernel(p0, X, y, lr, lr, 40, "logistic", "ngd")
    half, rec1 = margin.train_kernel(p0, X, y, lr, lr, 20, "logistic", "ngd")
    two, rec2 = margin.train_kernel(half, X, y, lr, lr, 20, "logistic", "ngd", log_scale=rec1[2][-1])
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(two)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    assert abs(float(rec[2][-1]) - float(rec2[2][-1])) < 1e-4


def test_cifar10_scale_from_the_published_statistics():
    u = realdata.cifar10_scale()
    want = math.sqrt(1024 * sum(m * m + s * s for m, s in zip(realdata.CIFAR10_MEAN, realdata.CIFAR10_STD)))
    assert u.d == 3072 and u.rms_norm == pytest.approx(want)
    assert u.unit == pytest.approx(want / math.sqrt(3072))
    assert 0.8 < u.eps_in_units < 1.1  # "about one unit": 0.93
    with pytest.raises(ValueError, match="eps"):
        realdata.cifar10_scale(eps=0.0)


def test_compare_rays_on_one_network_matches_compare_rays_kernel(digits):
    _, (Xt, _) = digits
    net = nets.init_params(jax.random.key(7), [64, 64])
    r = rays.compare_rays_on(jax.random.key(8), net, Xt[:10], n_rays=4)
    assert r.gradient.shape == (1, 10) and r.random.shape == (1, 10, 4)
    lin = np.asarray(gradients.linearized_distance(net, Xt[:10]))
    np.testing.assert_allclose(np.asarray(r.linear[0]), lin, rtol=1e-5)
    with pytest.raises(ValueError, match="kappa"):
        rays.compare_rays_on(jax.random.key(8), net, Xt[:10], kappa=0)


# ---- figures.ch6 and the checker ----------------------------------------------------------

def test_figures_draw_and_reject_bad_shapes(digits):
    import matplotlib.pyplot as plt

    from mini_adv.figures import ch6

    (X, _), _ = digits
    P, c = data.digit_pixels((3, 8))
    delta = 0.1 * np.asarray(X[:3])
    fig = plt.figure()
    k = ch6.draw_perturbations(fig, X[:3], delta, pixels=P[:3], scale=c[:3], labels=["a", "b", "c"])
    assert k >= 1 and len(fig.axes) >= 9
    plt.close(fig)
    assert ch6.magnification(np.full(4, 0.01), 1.0) == 100.0
    assert ch6.magnification(np.full(4, 0.3), 1.0) == 2.0
    assert ch6.magnification(np.zeros(4), 1.0) == 1.0
    with pytest.raises(ValueError, match="same shape"):
        ch6.draw_perturbations(plt.figure(), X[:3], delta[:2])
    with pytest.raises(ValueError, match="square"):
        ch6.draw_perturbations(plt.figure(), np.ones((2, 8)), np.ones((2, 8)))
    with pytest.raises(ValueError, match="scale"):
        ch6.draw_perturbations(plt.figure(), X[:3], delta, pixels=P[:3])
    plt.close("all")


def test_check_off_share_passes_the_solution_and_fails_common_mistakes():
    def off_share(params, Z, P):
        g = jax.vmap(jax.grad(lambda z: nets.apply(params, z)))(Z)
        return jnp.linalg.norm(g - g @ P, axis=1) / jnp.linalg.norm(g, axis=1)

    def on_share(params, Z, P):
        g = jax.vmap(jax.grad(lambda z: nets.apply(params, z)))(Z)
        return jnp.linalg.norm(g @ P, axis=1) / jnp.linalg.norm(g, axis=1)

    def squared(params, Z, P):
        return off_share(params, Z, P) ** 2

    def stub(params, Z, P):
        raise NotImplementedError("your code here")

    key = jax.random.key(11)
    assert checks.check_off_share(off_share, key=key, verbose=False).passed
    for wrong in (on_share, squared):
        res = checks.check_off_share(wrong, key=key, verbose=False)
        assert not res.passed and "wrong values" in res.message
    res = checks.check_off_share(stub, key=key, verbose=False)
    assert not res.passed and "not implemented" in res.message
    with pytest.raises(ValueError, match="your function"):
        checks.check_off_share("off_share")
