"""Chapter 5: max-margin training, its KKT points, and their non-robustness (mini_adv.margin
and chapter 5's figures)."""

import math

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported anywhere: figures without a display

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from flax import nnx  # noqa: E402

from mini_adv import attacks, data, figures, margin, nets  # noqa: E402
from mini_adv.margin import TwoLayerNet  # noqa: E402


@pytest.fixture
def plt():
    """pyplot, with every figure closed afterwards (also when the test fails)."""
    import matplotlib.pyplot as pyplot

    yield pyplot
    pyplot.close("all")


def symmetric_kkt_net(n: int, d: int):
    """The exact KKT point of (P) on orthogonal data x_i = √d e_i with balanced labels.

    One unit per class: w_± = v_± λ Σ_{y_i = ±1} x_i, v_±² = 1/(λ d), λ = √(2/(n d)), so every
    point has margin exactly 1 and θ = Σ_i λ y_i ∂_θ N(x_i) holds with the other class's
    points on the kink of each unit (pre-activation exactly 0).
    """
    X = math.sqrt(d) * jnp.eye(n, d)
    y = jnp.where(jnp.arange(n) < n // 2, 1.0, -1.0)
    lam = math.sqrt(2.0 / (n * d))
    v = math.sqrt(1.0 / (lam * d))
    K = jnp.stack([v * lam * jnp.sum(X[y > 0], axis=0), v * lam * jnp.sum(X[y < 0], axis=0)], 1)
    p = nets.MLPParams(kernels=(K,), readout=jnp.array([v, -v]))
    return TwoLayerNet.from_params(p), X, y, lam


def test_exact_kkt_point_of_orthogonal_data():
    n, d = 8, 64
    net, X, y, lam = symmetric_kkt_net(n, d)
    np.testing.assert_allclose(y * net(X), 1.0, rtol=1e-5)
    rep = margin.kkt_check(net, X, y)
    assert rep.residual < 1e-5 and abs(rep.slackness) < 1e-5 and rep.support.all()
    np.testing.assert_allclose(rep.lam, lam, rtol=1e-4)
    us = margin.unit_structure(net, X, y)
    assert us.significant.sum() == 2 and us.pure.all()
    np.testing.assert_allclose(us.balance, 1.0, rtol=1e-5)
    # ‖θ‖² = 2 (v² + ‖w‖²) = 4 v² = 4/(λd): the normalised margin is λd/4
    assert margin.normalized_margin(net, X, y) == pytest.approx(lam * d / 4, rel=1e-5)
    # the symmetric idealisation: the flip along −y_i û is exactly ‖x‖/√n
    f = margin.flip_distances(net, X, y)
    np.testing.assert_allclose(f.relative("universal"), 1.0, rtol=1e-4)
    # the robust network: on orthogonal points the certificate is exactly ‖x‖/2
    rob, radius = margin.robust_network(X, y)
    np.testing.assert_allclose(radius, math.sqrt(d) / 2, rtol=1e-6)
    np.testing.assert_allclose(y * rob(X), d / 2, rtol=1e-6)


@pytest.mark.parametrize("bias", [False, True])
def test_training_reaches_a_kkt_point_with_pure_units(fresh_key, bias):
    k_data, k_net = jax.random.split(fresh_key)
    X, y = data.nearly_orthogonal(k_data, 20, 500)
    net, hist = margin.train(k_net, X, y, width=32, bias=bias, steps=4000)
    # 100 % training accuracy first: the KKT conditions concern fitted data only
    assert hist.accuracy[-1] == 1.0 and hist.fitted_at is not None
    assert hist.normalized_margin[-1] > hist.normalized_margin[hist.fitted_at + 10]
    assert margin.normalized_margin(net, X, y) == pytest.approx(hist.normalized_margin[-1], rel=1e-3)
    rep = margin.kkt_check(net, X, y)
    plain = margin.kkt_check(net, X, y, kink_tol=0.0)
    print(rep.summary(), plain.residual)
    # over 80 fresh runs (40 seeds × bias/no bias): residual 0.018 ± 0.006 (max 0.038); without
    # the kink coefficients 0.10 ± 0.03, always larger (by 0.016 at least); slackness
    # 0.0015 ± 0.0002; no μ_ij above λ_i
    assert rep.residual < 0.06
    assert rep.residual < plain.residual
    assert abs(rep.slackness) < 0.02 and rep.kink_excess < 0.05
    us = margin.unit_structure(net, X, y)
    s = us.summary()
    print(s)
    assert s["significant"] >= 2 and s["positive_units"] >= 1 and s["negative_units"] >= 1
    assert s["significant_pure"] == 1.0  # every significant unit is class-pure
    # balance 0.987 ± 0.001 over those runs (the finite steps leave v_j² slightly below ‖w_j‖²);
    # 2 to 13 significant units, at least one per class every time
    assert 0.97 < s["balance_min"] and s["balance_max"] < 1.03
    if bias:
        assert s["min_relative_bias"] > -1e-3  # KKT: non-negative biases (measured ≈ 0.1)
    # the universal direction lowers every unit of one class and raises the other's
    u = margin.universal_direction(X, y)
    K = np.asarray(net.params().kernels[0])[:, us.significant]
    assert np.all(np.sign(np.asarray(u) @ K) == us.sign[us.significant])
    assert s["aligned_with_u"] == 1.0


def test_sweep_regression_a_crossing_steeper_than_its_start():
    """Seed 2263589446 (a CI failure): at n = 40, data set 2, point 11 crosses along −y û where
    f is three times steeper than at x; the search's rounding band (from ‖∇f(x)‖) was too
    thin, the re-evaluation in input space disagreed, and the flip was lost. The ray search
    now moves such a point outwards until the network agrees (attacks._push_outwards)."""
    sweep = margin.sweep_n(jax.random.key(2263589446), 1000, [40], n_datasets=6, width=32,
                           steps=2000)
    rel = sweep[0].trained.relative("universal")
    assert np.isfinite(rel).all()
    assert 1.3 < float(rel[2, 11]) < 1.7          # float64 crossing of that ray: 1.488


def test_flip_distance_scales_like_norm_over_root_n(fresh_key, plt):
    """Vardi et al.: the flip along −y_i û is of order ‖x‖/√n (symmetric idealisation: exactly)."""
    sweep = margin.sweep_n(fresh_key, 1000, [10, 40], n_datasets=6, width=32, steps=2000)
    summ = [p.summary() for p in sweep]
    fit = margin.fit_flip_scaling(sweep)
    print(summ, fit)
    # Bands from 30 seeds (jax.random.key(0..29), these sizes), mean ± s.d. [min, max]; each
    # edge about 5 s.d. from the mean. A 20 % error in the flip distance fails them.
    for s, (lo, hi) in zip(summ, [(0.95, 1.06),    # n = 10: 1.004 ± 0.010 [0.979, 1.026]
                                  (1.02, 1.21)]):  # n = 40: 1.116 ± 0.019 [1.083, 1.152]
        # constant-size training (2000 NGD steps, width 32) fits almost every data set (at
        # n = 40, 0.994 ± 0.030 of them over the 30 seeds, once 5 of 6); the medians are over
        # the fitted ones, and every fitted one flips along −y û.
        assert s["fitted"] >= 0.8 and s["flipped_universal"] == 1.0
        assert lo < s["median_sqrt_n_universal"] < hi, s
    # slope of median(dist/‖x‖) in n: −0.424 ± 0.015 over the 30 seeds [−0.451, −0.383] (the
    # constant creeps up as n·μ(X) leaves the theorem's regime, see the chapter)
    assert -0.50 < fit.slope < -0.35, fit
    np.testing.assert_array_equal(fit.ns, [10, 40])
    # the constant with the slope held at −1/2: the geometric mean of √n·median
    want_C = np.exp(np.mean(np.log(np.array(fit.medians)) + 0.5 * np.log(np.array(fit.ns, float))))
    assert fit.C_half == pytest.approx(want_C, rel=1e-9)
    # the robust network's certified radius / trained median at n = 40: 2.51 ± 0.04 [2.42, 2.58]
    assert 2.3 < summ[1]["robust_radius_over_trained"] < 2.7, summ[1]
    # the chapter's figures draw these results
    fig, ax = plt.subplots()
    assert figures.ch5.plot_flip_scaling(ax, sweep) == fit
    trained_u = ax.containers[0].lines[0]   # medians along −y û, fitted data sets only
    np.testing.assert_allclose(trained_u.get_ydata(), fit.medians, rtol=1e-6)
    fig = plt.figure()
    top = figures.ch5.flip_frame_hist_max(sweep)
    figures.ch5.draw_flip_frame(fig, sweep[0], hist_max=top)
    ok = sweep[0].accuracy >= 1.0
    want = np.sort((sweep[0].trained.universal / sweep[0].trained.norms)[ok].ravel())
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), want)
    # the histograms show fractions of the pooled points, on one y axis for every frame
    assert fig.axes[1].get_ylim() == (0.0, top) and 0 < top <= 1
    assert max(b.get_height() for b in fig.axes[1].patches) <= top
    with pytest.raises(ValueError, match="hist_max"):
        figures.ch5.draw_flip_frame(plt.figure(), sweep[0], hist_max=0.0)


def test_inside_the_regime_the_trained_upper_bound_is_below_the_robust_lower_bound(fresh_key,
                                                                                  plt):
    """The chapter's in-regime experiment at its CPU preset (d = 2·10⁴, n = 4 and 10, two data
    sets, width 32, 500 NGD steps): n·μ(X) ≤ 1/3 everywhere, flips along −y û at ‖x‖/√n,
    certified radii just below ‖x‖/2; at n = 4 the two bounds coincide (√n/2 = 1), at n = 10
    the trained network's upper bound is below the robust one's lower bound at every point."""
    r = margin.regime_experiment(fresh_key, 20_000, [4, 10], n_datasets=2, width=32, steps=500)
    s4, s10 = r.summary()
    print(s4, s10)
    # Over 96 seeds (jax.random.key(0..95), these sizes), mean ± s.d. [min, max]; bands about
    # 5 s.d. from the mean (one-sided where the quantity is bounded).
    # max n·μ(X): n = 4: 0.057 ± 0.015 [0.024, 0.104]; n = 10: 0.193 ± 0.032 [0.133, 0.284]
    # (a union bound puts P(n·μ > 1/3) at n = 10 near 1e-4)
    assert s4["inside"] and s10["inside"] and r.threshold == pytest.approx(1 / 3)
    # every data set fitted in all 96 seeds (width 32: a point with no unit of its class active
    # at the start, which stays dead, has probability about (3/4)^32 per point)
    assert s4["fitted"] >= 0.5 and s10["fitted"] >= 0.5
    # √n·median flip/‖x‖: n = 4: 1.001 ± 0.004 [0.991, 1.011]; n = 10: 1.040 ± 0.029 [1.006, 1.127]
    assert 0.98 < s4["sqrt_n_upper_median"] < 1.03, s4
    assert 0.95 < s10["sqrt_n_upper_median"] < 1.2, s10
    # median certified radius/‖x‖: 0.496 ± 0.003 and 0.492 ± 0.002; smallest 0.478 / 0.472
    for s in (s4, s10):
        assert 0.47 < s["lower_median"] <= 0.5 and s["lower_min"] > 0.45, s
    # the ratio of the medians: n = 4: 0.991 ± 0.005 [0.978, 1.001] (no contrast, √n/2 = 1);
    # n = 10: 1.498 ± 0.041 [1.381, 1.554], a little below √10/2 = 1.58
    assert 0.96 < s4["ratio"] < 1.02, s4
    assert 1.28 < s10["ratio"] < 1.7, s10
    # points where upper < lower at n = 10: 1.0 in all 96 seeds (largest flip/‖x‖
    # 0.410 ± 0.031, max 0.475, against radii ≥ 0.472); at least 90 % here
    assert s10["ordered"] >= 0.9, s10
    # the figure draws exactly these points: ▼ the upper bounds, ▲ the lower bounds
    fig, ax = plt.subplots()
    figures.ch5.plot_regime_bounds(ax, r)
    up, lo = ax.collections[:2]
    p = r.points[1]
    ok = p.accuracy >= 1.0
    np.testing.assert_allclose(np.sort(up.get_offsets()[-ok.sum() * p.n:, 1]),
                               np.sort((p.trained.universal / p.trained.norms)[ok].ravel()),
                               rtol=1e-6)
    np.testing.assert_allclose(np.sort(lo.get_offsets()[-ok.sum() * p.n:, 1]),
                               np.sort((p.robust_radius / p.trained.norms)[ok].ravel()),
                               rtol=1e-6)
    labels = [t.get_text() for t in ax.legend().get_texts()]
    assert any("upper bound" in t for t in labels) and any("lower bound" in t for t in labels)
    assert any(line.get_linestyle() == "--" for line in ax.get_lines())  # the prediction


def test_robust_certificate_holds_along_every_ray(fresh_key):
    k_data, k_dir = jax.random.split(fresh_key)
    X, y = data.nearly_orthogonal(k_data, 40, 1000)
    rob, radius = margin.robust_network(X, y)
    assert np.all(radius > 0) and np.all(np.asarray(y * rob(X)) > 0)
    f = margin.flip_distances(rob, X, y)
    U = data.sphere(k_dir, 40, 1000, radius=1.0)
    rnd = attacks.ray_flip_distance(rob, X, U, max_distance=2 * math.sqrt(1000))
    for dist in (f.universal, f.gradient, np.asarray(rnd.distance)):
        assert np.all(dist >= radius * (1 - 1e-6))


def test_gd_margin_grows_slower_than_ngd(fresh_key, plt):
    k_data, k_net = jax.random.split(fresh_key)
    X, y = data.nearly_orthogonal(k_data, 20, 500)
    _, h_gd = margin.train(k_net, X, y, width=32, steps=4000, method="gd")
    net, h_ngd = margin.train(k_net, X, y, width=32, steps=4000, method="ngd")
    print(h_gd.normalized_margin[-1], h_ngd.normalized_margin[-1])
    # over 40 fresh seeds: GD 1.33 ± 0.11, NGD 1.66 ± 0.10; NGD ahead by 0.34 ± 0.08 (min 0.21)
    assert h_gd.accuracy[-1] == 1.0 and h_ngd.accuracy[-1] == 1.0
    assert h_gd.normalized_margin[-1] < h_ngd.normalized_margin[-1]
    assert h_gd.log_norm[-1] < h_ngd.log_norm[-1]  # GD's ‖θ‖ grows only logarithmically
    t0 = h_gd.fitted_at
    assert h_gd.normalized_margin[-1] > h_gd.normalized_margin[t0 + 10]
    fig, ax = plt.subplots()
    figures.ch5.plot_margin_growth(ax, {"NGD": h_ngd, "GD": h_gd}, reference=1.5)
    assert ax.get_lines()[-1].get_ydata()[0] == 1.5  # the dashed reference line, drawn last
    for line, h in zip(ax.get_lines(), (h_ngd, h_gd)):  # drawn from the first fitted step on
        t = h.steps[max(h.fitted_at, 1):]
        np.testing.assert_array_equal(line.get_xdata(), t)
        np.testing.assert_array_equal(line.get_ydata(), h.normalized_margin[t])
    prof = margin.flip_profiles(k_data, net, X, y)
    assert prof.universal.shape == (121, 20) and prof.t[-1] == pytest.approx(3.0)
    np.testing.assert_allclose(prof.universal[0], 1.0, rtol=1e-5)  # t = 0: the point itself
    assert prof.flipped_fraction("universal") == 1.0 and prof.flipped_fraction("random") < 0.5
    fig, ax = plt.subplots()
    figures.ch5.draw_profiles(ax, prof)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), prof.universal[:, 0])


def test_ngd_step_is_minus_grad_log_loss_in_log_space():
    """One step of the kernel equals θ − (η/R)∇log L computed directly (float64, moderate u),
    and the log-space loss terms stay finite where L underflows."""
    from mini_adv.margin import log_loss_terms, init_two_layer, train_kernel
    from mini_adv.runtime import float64

    with float64():
        X, y = data.nearly_orthogonal(jax.random.key(0), 6, 16)
        X, y = X.astype(jnp.float64), y.astype(jnp.float64)
        p = jax.tree.map(lambda a: a.astype(jnp.float64),
                         init_two_layer(jax.random.key(1), 16, 5, bias=True, init_scale=0.7))
        R = float(jnp.sqrt(jnp.max(jnp.sum(X * X, -1)) + 1))
        for loss, ell in [("logistic", lambda u: jnp.log1p(jnp.exp(-u))),
                          ("exponential", lambda u: jnp.exp(-u))]:
            def log_L(theta):
                return jnp.log(jnp.mean(ell(y * nets.apply(theta, X))))
            g = jax.grad(log_L)(p)
            expected = jax.tree.map(lambda a, b: a - 0.01 / R * b, p, g)
            norm = jnp.sqrt(sum(jnp.sum(a * a) for a in jax.tree.leaves(expected)))
            phi, rec = train_kernel(p, X, y, jnp.asarray(0.01), jnp.asarray(0.01), 1, loss, "ngd")
            for a, b in zip(jax.tree.leaves(phi), jax.tree.leaves(expected)):
                np.testing.assert_allclose(a, b / norm, rtol=1e-9, atol=1e-12)
            assert float(rec[2][-1]) == pytest.approx(float(jnp.log(norm)), rel=1e-9)
            assert float(rec[0][0]) == pytest.approx(float(log_L(p)), rel=1e-9)
    for loss in margin.LOSSES:
        log_l, log_d = log_loss_terms(jnp.array([1e30, 200.0, 0.0, -50.0]), loss)
        assert np.all(np.isfinite(log_l)) and np.all(np.isfinite(log_d))
        assert float(log_l[1]) == pytest.approx(-200.0, rel=1e-6)


def test_normalized_gradient_is_grad_log_loss_and_finite_where_the_loss_underflows():
    """margin.normalized_gradient = ∇log L (float64, moderate margins, both losses); at
    margins in the thousands, where L underflows and the naive ∇L/L is 0/0, it stays finite
    and is −q-weighted with all weight on the points of smallest margin."""
    from mini_adv.runtime import float64

    p = margin.init_two_layer(jax.random.key(1), 16, 5, bias=True, init_scale=0.7)
    X, y = data.nearly_orthogonal(jax.random.key(0), 6, 16)
    with float64():
        X64, y64 = X.astype(jnp.float64), y.astype(jnp.float64)
        p64 = jax.tree.map(lambda a: a.astype(jnp.float64), p)
        for loss, ell in [("logistic", lambda u: jnp.log1p(jnp.exp(-u))),
                          ("exponential", lambda u: jnp.exp(-u))]:
            want = jax.grad(lambda t: jnp.log(jnp.mean(ell(y64 * nets.apply(t, X64)))))(p64)
            got = margin.normalized_gradient(p64, X64, y64, loss)
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    fit, _ = margin.robust_network(X, y)
    big = jax.tree.map(lambda a: 30.0 * a, fit.params())
    u = y * nets.apply(big, X)
    assert float(jnp.min(u)) > 100.0
    g = margin.normalized_gradient(big, X, y)
    assert all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree.leaves(g))
    # there ℓ(u) ≈ −ℓ'(u) ≈ e^{−u}: ∇L/L = −Σ_i softmax(−u)_i ∇u_i, evaluated in float64
    with float64():
        big64 = jax.tree.map(lambda a: a.astype(jnp.float64), big)
        u64, vjp = jax.vjp(lambda t: y.astype(jnp.float64) * nets.apply(t, X.astype(jnp.float64)),
                           big64)
        (want,) = vjp(-jax.nn.softmax(-u64))
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5 * float(np.max(np.abs(b))))


def test_float64_training_agrees_with_float32_and_same_key_same_numbers():
    X, y = data.nearly_orthogonal(jax.random.key(2), 10, 200)
    net32, h32 = margin.train(jax.random.key(3), X, y, width=16, steps=300)
    again, h_again = margin.train(jax.random.key(3), X, y, width=16, steps=300)
    np.testing.assert_array_equal(net32(X), again(X))
    np.testing.assert_array_equal(h32.normalized_margin, h_again.normalized_margin)
    net64, h64 = margin.train(jax.random.key(3), X, y, width=16, steps=300, float64=True)
    assert net64.params().readout.dtype == jnp.float32
    np.testing.assert_allclose(h32.normalized_margin, h64.normalized_margin, atol=2e-3)
    np.testing.assert_allclose(net32(X), net64(X), atol=2e-3)


def test_two_layer_net_is_a_network_for_the_attacks():
    assert nets.as_params(TwoLayerNet(32, 6, rngs=nnx.Rngs(0))).biases is None
    net = TwoLayerNet(32, 6, bias=True, init_scale=1.0, rngs=nnx.Rngs(0))
    p = nets.as_params(net)
    assert isinstance(p, nets.MLPParams) and p.widths == (32, 6)
    assert p.biases is not None and net.has_bias and net.width == 6
    X = data.sphere(jax.random.key(1), 5, 32)
    np.testing.assert_allclose(net(X), nets.apply(p, X), rtol=1e-6)
    np.testing.assert_allclose(TwoLayerNet.from_params(p)(X), net(X), rtol=1e-6)
    # from_params holds exactly the given arrays (no random initialisation is drawn)
    again = TwoLayerNet.from_params(p)
    for a, b in zip(jax.tree.leaves(again.params()), jax.tree.leaves(p)):
        np.testing.assert_array_equal(a, b)
    step = attacks.gradient_step(net, X, c=1.5)
    ray = attacks.ray_flip_distance(net, X, -step.x_adv + X, max_distance=20.0)
    assert step.x_adv.shape == X.shape and ray.distance.shape == (5,)


def test_cluster_setting_is_accurate_and_non_robust(fresh_key):
    """Frei et al. (2023): the trained network classifies fresh points and is non-robust."""
    r = margin.cluster_experiment(fresh_key, d=500, k=10, n_train=60, n_test=200, noise=0.5,
                                  width=32, steps=2000)
    s = r.summary()
    print(s)
    # Over 30 seeds (jax.random.key(0..29), these sizes): train and test accuracy 1.0 every
    # time (with i.i.d. cluster sizes, a cluster that got no training point cost 6 % of the
    # test points once in 40 seeds: hence balanced clusters), every point flipped; flips at
    # 0.985 ± 0.027 [0.935, 1.036] times ‖μ‖/√k, i.e. 0.279 ± 0.008 [0.264, 0.294] of ‖x‖;
    # along the gradient 1.29 ± 0.055 [1.20, 1.41]. Bands about 5 s.d. from the mean.
    assert s["train_accuracy"] == 1.0 and s["test_accuracy"] > 0.95
    assert s["flipped"] == 1.0
    assert 0.85 < s["median_universal_over_pred"] < 1.12, s
    assert 0.24 < s["median_universal_over_norm"] < 0.32, s
    assert 1.0 < s["median_gradient_over_pred"] < 1.6, s


def test_kkt_system_of_the_exact_kkt_point():
    """CODE-09: the NNLS system on its own. At the symmetric KKT point (every margin 1),
    A·(λ, 0) = t exactly with λ_i = √(2/(nd)), every other-class point is a kink pair, and W
    lies in the span of the x_i."""
    from mini_adv.margin.kkt import _kkt_system

    n, d = 6, 16
    net, X, y, lam = symmetric_kkt_net(n, d)
    p = net.params()
    K, v = np.asarray(p.kernels[0], np.float64), np.asarray(p.readout, np.float64)
    Xn, yn = np.asarray(X, np.float64), np.asarray(y, np.float64)
    A, t, perp2, pairs = _kkt_system(K, v, None, Xn, yn, 1e-3)
    assert A.shape == (2, n + 1, n + n) and t.shape == (2, n + 1)  # k = n rows + the v-row
    assert perp2 == pytest.approx(0.0, abs=1e-20)
    # unit 0 votes +1 and is on the kink at the 3 negative points, unit 1 the reverse
    assert sorted(map(tuple, pairs.tolist())) == sorted(
        [(i, 0) for i in range(n // 2, n)] + [(i, 1) for i in range(n // 2)])
    sol = np.concatenate([np.full(n, lam), np.zeros(len(pairs))])
    np.testing.assert_allclose(A @ sol, t, rtol=1e-5, atol=1e-6)
    # with (zero) biases: one more row per unit, the b-equation, whose target b_j is 0
    A_b, t_b, _, _ = _kkt_system(K, v, np.zeros(2), Xn, yn, 0.0)
    assert A_b.shape == (2, n + 2, n) and not np.any(t_b[:, -1])
    # without kink coefficients (kink_tol = 0): λ alone, and the system is smaller
    A0, _, _, pairs0 = _kkt_system(K, v, None, Xn, yn, 0.0)
    assert A0.shape == (2, n + 1, n) and len(pairs0) == 0
    with pytest.raises(ValueError, match="max_entries"):
        _kkt_system(K, v, None, Xn, yn, 1e-3, max_entries=10)


def test_no_silent_nan():
    """CODE-36: a zero network has no normalised margin and no flip profile; a sweep point
    that was never fitted has NaN medians, explicitly, and no scaling fit."""
    zero = TwoLayerNet.from_params(nets.MLPParams(kernels=(jnp.zeros((4, 3)),),
                                                  readout=jnp.zeros(3)))
    with pytest.raises(ValueError, match="zero"):
        margin.normalized_margin(zero, X4, Y3)
    with pytest.raises(ValueError, match="N\\(x_i\\) = 0"):
        margin.flip_profiles(KEY, zero, X4, Y3)
    dist = margin.FlipDistances(np.ones((2, 3)), np.ones((2, 3)), np.full((2, 3), 2.0))
    point = margin.SweepPoint(n=3, d=4, width=2, trained=dist, robust_radius=np.ones((2, 3)),
                              accuracy=np.array([0.5, 0.5]), margin=np.zeros(2),
                              coherence=np.zeros(2))
    s = point.summary()
    assert s["fitted"] == 0.0 and math.isnan(s["median_sqrt_n_universal"])
    with pytest.raises(ValueError, match="no data set was fitted at n = 3"):
        margin.fit_flip_scaling([point, point])


def test_numbers_may_be_numpy_or_jax_scalars():
    X, y = data.nearly_orthogonal(jax.random.key(4), 6, 16)
    a, ha = margin.train(jax.random.key(5), X, y, width=np.int64(4), steps=jnp.asarray(20),
                         lr=np.float32(0.1), init_scale=jnp.asarray(0.01))
    b, hb = margin.train(jax.random.key(5), X, y, width=4, steps=20, lr=0.1, init_scale=0.01)
    np.testing.assert_array_equal(ha.normalized_margin, hb.normalized_margin)
    net, X, y, lam = symmetric_kkt_net(4, 16)
    rep = margin.kkt_check(net, X, y, kink_tol=np.float64(1e-3), support_tol=jnp.asarray(0.05))
    np.testing.assert_allclose(rep.lam, lam, rtol=1e-4)


def test_data_helpers(fresh_key):
    k1, k2, k3, k4 = jax.random.split(fresh_key, 4)
    X, y = data.nearly_orthogonal(k1, 9, 400)
    np.testing.assert_allclose(jnp.linalg.norm(X, axis=1), 20.0, rtol=1e-5)
    assert sorted(np.asarray(y).tolist()) == [-1.0] * 5 + [1.0] * 4
    G = np.abs(np.asarray(X @ X.T))
    np.fill_diagonal(G, 0)
    assert data.coherence(X) == pytest.approx(G.max() / 400, rel=1e-5)
    assert set(np.unique(data.signs(k2, 50, balanced=False)).tolist()) <= {-1.0, 1.0}
    means, labels = data.cluster_means(k3, 4, 300)
    Xc, yc, c = data.clusters(k4, means, labels, 200, noise=0.5)
    assert Xc.shape == (200, 300) and np.array_equal(yc, labels[c])
    assert np.array_equal(np.bincount(np.asarray(c)), [50] * 4)
    _, _, c_iid = data.clusters(k4, means, labels, 200, balanced=False)
    assert set(np.unique(c_iid).tolist()) <= {0, 1, 2, 3}
    rel = np.linalg.norm(Xc - means[c], axis=1) / np.linalg.norm(means[c], axis=1)
    assert 0.4 < np.median(rel) < 0.6


def _net():
    return TwoLayerNet(4, 3, rngs=nnx.Rngs(0))


X4 = jnp.ones((3, 4))
Y3 = jnp.array([1.0, -1.0, 1.0])
KEY = jax.random.key(0)


@pytest.mark.parametrize("call,msg", [
    (lambda: margin.train(KEY, X4, jnp.array([1.0, 0.0, 1.0]), width=2, steps=5), "±1"),
    (lambda: margin.train(KEY, X4, jnp.array([1.0, -1.0]), width=2, steps=5), "shape"),
    (lambda: margin.train(KEY, X4.at[0, 0].set(jnp.nan), Y3, width=2, steps=5), "NaN"),
    (lambda: margin.train(KEY, X4.astype(jnp.int32), Y3, width=2, steps=5), "floating"),
    (lambda: margin.train(KEY, X4, Y3, width=2, steps=5, loss="hinge"), "unknown loss"),
    (lambda: margin.train(KEY, X4, Y3, width=2, steps=5, method="adam"), "unknown method"),
    (lambda: margin.train(KEY, X4, Y3, width=0, steps=5), "width"),
    (lambda: margin.train(KEY, X4, Y3, width=2.0, steps=5), "width"),
    (lambda: margin.train(KEY, X4, Y3, width=2, steps=0), "steps"),
    (lambda: margin.train(KEY, X4, Y3, width=2, steps=5, lr=-1.0), "lr"),
    (lambda: margin.train(KEY, X4, Y3, width=2, steps=5, lr=(0.1, 0.0)), "lr"),
    (lambda: margin.train(KEY, X4, Y3, width=2, steps=5, lr=(0.1,)), "pair"),
    (lambda: margin.train(KEY, X4, Y3, width=2, steps=5, init_scale=0.0), "init_scale"),
    (lambda: margin.train(0, X4, Y3, width=2, steps=5), r"PRNG key, e.g. jax.random.key\(0\)"),
    (lambda: margin.cluster_experiment(KEY, d=16, k=2, n_train=4, n_test=1, noise=0.5,
                                       width=2, steps=1), "classifies none of the 1 test points"),
    (lambda: margin.cluster_experiment(0, d=16, k=2, n_train=4, n_test=1, noise=0.5,
                                       width=2, steps=1), "PRNG key"),
    (lambda: margin.kkt_check(TwoLayerNet.from_params(nets.MLPParams(
        kernels=(jnp.ones((4, 3)),), readout=jnp.zeros(3))), X4, Y3), "train longer"),
    (lambda: margin.kkt_check(_net(), X4, Y3, kink_tol=2.0), "kink_tol"),
    (lambda: margin.normalized_margin(_net(), jnp.ones((3, 5)), Y3), r"d = 4; got shape \(3, 5\)"),
    (lambda: margin.normalized_margin(jax.tree.map(lambda a: a[None], _net().params()), X4, Y3),
     "stack"),
    (lambda: margin.normalized_margin(nets.init_params(KEY, [4, 3, 2]), X4, Y3), "depth-2"),
    (lambda: margin.unit_structure(_net(), X4, Y3, fraction=0.0), "fraction"),
    (lambda: margin.universal_direction(jnp.ones((2, 4)), jnp.array([1.0, -1.0])), "undefined"),
    (lambda: margin.robust_network(jnp.zeros((2, 4)), jnp.array([1.0, -1.0])), "zero point"),
    (lambda: margin.flip_distances(_net(), X4, jnp.array([1.0, -1.0, 2.0])), "±1"),
    (lambda: margin.sweep_n(KEY, 16, [], n_datasets=2, width=2, steps=5), "empty"),
    (lambda: margin.sweep_n(KEY, 16, [4], n_datasets=2, width=2, steps=5, loss="hinge"), "loss"),
    (lambda: margin.regime_experiment(KEY, 500, [20], n_datasets=2, width=2, steps=5),
     "outside the regime"),
    (lambda: margin.regime_experiment(KEY, 10_000, [4], n_datasets=2, width=2, steps=5,
                                      threshold=0.0), "threshold"),
    (lambda: margin.regime_experiment(KEY, 10_000, [4], n_datasets=2, width=2, steps=5,
                                      threshold=2.0), "threshold"),
    (lambda: margin.regime_experiment(KEY, 10_000, [1], n_datasets=2, width=2, steps=5), "n ≥ 2"),
    (lambda: margin.regime_experiment(KEY, 10_000, [], n_datasets=2, width=2, steps=5), "empty"),
    (lambda: margin.regime_experiment(0, 10_000, [4], n_datasets=2, width=2, steps=5), "PRNG key"),
    (lambda: margin.regime_experiment(KEY, 10_000, [4], n_datasets=0, width=2, steps=5),
     "n_datasets"),
    (lambda: margin.fit_flip_scaling([], which="sideways"), "which"),
    (lambda: margin.flip_profiles(KEY, _net(), X4, Y3, points=0), "points"),
    (lambda: TwoLayerNet(4, 0, rngs=nnx.Rngs(0)), "width"),
    (lambda: TwoLayerNet(4, 3), "rngs"),
    (lambda: TwoLayerNet.from_params(nets.init_params(KEY, [4, 3], activation="tanh")), "ReLU"),
    (lambda: data.clusters(KEY, jnp.ones((2, 4)), jnp.array([1.0, -1.0]), 5, noise=-1.0), "noise"),
    (lambda: data.clusters(KEY, jnp.ones((2, 4)), jnp.array([1.0, 0.0]), 5), "±1"),
    (lambda: data.coherence(jnp.ones((1, 4))), "n ≥ 2"),
])
def test_bad_input_raises(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()
