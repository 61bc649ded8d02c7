"""What chapter 1's prose says the reader sees, asserted at the chapter's own CPU sizes.

Each test names the cell (by what it computes) and the sentence it backs. The sizes come from
the chapter's ``runtime.sizes`` cell (:func:`conftest.chapter_preset`), and the tests call the
package functions the cells call. Where a claim is about one fixed draw of the chapter, the
test uses that draw's key and one other fixed key; the tolerances are set from the spread over
many seeds, written beside them.

Already asserted elsewhere (not repeated here): the closed forms arctan(β)/π and C(β) against
Monte Carlo (``tests/test_rays.py::test_linear_predictions_match_monte_carlo``); the figure
functions draw the data and predictions they are given (``tests/test_figures.py``).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import chapter_preset
from flax import nnx

from mini_adv import attacks, data, gradients, nets, rays

S = chapter_preset("ch1")
KEY = jax.random.key(0)  # the chapter's key


def test_random_cosine_check_agrees_with_the_exact_finite_d_mean(fresh_key):
    """Lemma check: "the measured mean is within a few standard errors of the exact value"."""
    d, n = 1000, 20_000  # the cell's sizes
    k_w, k_x = jax.random.split(fresh_key)
    w = jax.random.normal(k_w, (d,))
    X = data.sphere(k_x, n, d)
    z = np.abs(np.asarray(math.sqrt(d) * (X @ w) / (jnp.linalg.norm(X, axis=1) * jnp.linalg.norm(w))))
    exact = math.sqrt(d) * math.exp(math.lgamma(d / 2) - math.lgamma((d + 1) / 2)) / math.sqrt(math.pi)
    se = z.std() / math.sqrt(n)
    # the z-score is standard normal; 4.5 s.e. fails with probability below 1e-5
    assert abs(z.mean() - exact) < 4.5 * se, (z.mean(), exact, se)
    assert exact == pytest.approx(math.sqrt(2 / math.pi), abs=5e-4)  # 0.7981 against 0.7979


@pytest.mark.parametrize("which", ["chapter", "other"])
def test_one_network_gradient_rays_flip_and_random_rays_go_farther(which):
    """The cell "gradient rays against random rays" (d = 256, 64 inputs, one network): every
    gradient ray flips, slightly beyond the linearised distance (median ratio within 25 % of 1),
    at a distance of order ‖x‖/√d; many random rays do not flip within 2‖x‖, and those that do
    go several times farther."""
    d = 256
    if which == "chapter":
        k_net = jax.random.split(jax.random.fold_in(KEY, 1), 3)[0]
        k_x, k_u = jax.random.fold_in(KEY, 4), jax.random.fold_in(KEY, 5)
    else:
        k_net, k_x, k_u = jax.random.split(jax.random.key(11), 3)
    net = nets.RandomMLP([d, d, d], rngs=nnx.Rngs(k_net))
    X = data.sphere(k_x, 64, d)
    U = data.sphere(k_u, 64, d, radius=1.0)
    budget = 2.0 * math.sqrt(d)
    g = attacks.ray_flip_distance(net, X, gradients.flip_direction(net, X), max_distance=budget)
    r = attacks.ray_flip_distance(net, X, U, max_distance=budget)
    lin = gradients.linearized_distance(net, X)
    # 125 networks (seeds 500–524, 2000–2099): every gradient ray flipped in every network
    assert bool(g.flipped.all())
    # median gradient/linearised: 1.055 ± 0.031, range 1.019 … 1.172 (and 1.208 for key 11,
    # the largest seen)
    assert 1.0 <= float(jnp.median(g.distance / lin)) <= 1.25
    # √d · median gradient distance/‖x‖ (= the median absolute distance, ‖x‖ = √d):
    # 0.76 ± 0.29, range 0.41 … 1.86 ("of order ‖x‖/√d")
    assert 0.2 <= float(jnp.median(g.distance)) <= 2.5
    # fraction of random rays that flip: 0.30 ± 0.12, range 0 … 0.53 (the rays of one network
    # are correlated); "many do not flip": at least a quarter do not
    assert float(r.flipped.mean()) <= 0.75
    # ratio of the median random to the median gradient distance, over the networks with a
    # flipped random ray: 14 ± 5, smallest 2.39
    if bool(r.flipped.any()):
        ratio = float(jnp.median(r.distance[r.flipped])) / float(jnp.median(g.distance))
        assert ratio >= 2.0


@pytest.fixture(scope="module")
def sweep():
    """The chapter's sweep at its CPU sizes, with a fixed key other than the chapter's."""
    return rays.sweep_rays(jax.random.key(16), S["dims"], n_networks=S["n_networks"],
                           n_inputs=S["n_inputs"], n_rays=S["n_rays"], kappa=2.0)


def test_sweep_panel_a_slope_one_half_and_medians_near_the_linear_constant(sweep):
    """(a): "the fitted slope is close to 1/2, the medians lie within about a third of C(2)√d,
    and at the largest d above it"."""
    slope = np.polyfit(np.log(sweep.d), np.log(sweep.ratio_median), 1)[0]
    # 30 seeds (1000–1029) at these sizes: slope 0.538 ± 0.014, range 0.505 … 0.557
    assert 0.45 <= slope <= 0.62, slope
    rel = sweep.ratio_median / (rays.linear_ratio_median(2.0) * np.sqrt(sweep.d))
    # ratio/(C√d) per d = 16, 64, 256, 1024: 0.98 ± 0.05, 1.06 ± 0.04, 1.11 ± 0.04, 1.15 ± 0.04
    # (range 0.90 … 1.23 over all d and seeds)
    assert np.all((rel > 2 / 3) & (rel < 4 / 3)), rel
    assert rel[-1] > 1.0, rel  # 4 s.d. below the mean at the largest d
    # the bootstrap interval drawn as the error bar contains the median
    assert np.all(sweep.ratio_median_lo <= sweep.ratio_median)
    assert np.all(sweep.ratio_median <= sweep.ratio_median_hi)


def test_sweep_panel_b_random_rays_rarely_flip_and_gradient_rays_nearly_always(sweep):
    """(b): "the random flip fraction stays between about 0.15 and 0.45 and does not grow with d;
    the gradient ray flips nearly every time once d ≥ 256; at d = 16 a sizeable fraction fail"."""
    p = sweep.p_flip_random
    # 30 seeds: 0.29 ± 0.03, 0.29 ± 0.03, 0.31 ± 0.03, 0.31 ± 0.02 (range 0.24 … 0.38)
    assert np.all((p >= 0.15) & (p <= 0.45)), p
    assert p[-1] - p[0] < 0.15, p  # the difference: 0.02 ± 0.04
    pg = dict(zip(sweep.d.tolist(), sweep.p_flip_gradient))
    # 30 seeds: 1.0 at every seed for d = 256 and 1024; 0.78 ± 0.05 (max 0.85) at d = 16
    assert all(pg[d] >= 0.98 for d in pg if d >= 256), pg
    assert pg[16] < 0.95, pg


def test_sweep_panel_c_gradient_distance_near_the_random_cosine(sweep):
    """(c): "√d · mean relative distance between half and twice √(2/π) at every d; above it at
    the smallest d; median gradient/linearised slightly above 1 (below 1.25), within 5 % of 1 at
    the largest d"."""
    c = math.sqrt(2 / math.pi)
    m = sweep.grad_rel_sqrt_d
    # 30 seeds: 1.18 ± 0.13, 1.12 ± 0.12, 0.89 ± 0.08, 0.84 ± 0.06 (range 0.71 … 1.39)
    assert np.all((m > c / 2) & (m < 2 * c)), m
    assert m[0] > c, m  # at d = 16, min over 30 seeds 0.98
    gl = sweep.grad_over_linear
    # 30 seeds: 1.087 ± 0.038, 1.103 ± 0.025, 1.052 ± 0.008, 1.026 ± 0.002 (max 1.17 at d = 16)
    assert np.all((gl >= 1.0) & (gl < 1.25)), gl
    assert gl[-1] < 1.05, gl


@pytest.mark.parametrize("which", ["chapter", "other"])
def test_slider_frames_show_the_boundary_at_the_same_rescaled_distance(which):
    """The slider: "in the middle panel (units of ‖x‖/√d, half-width 3) the boundary stays at a
    distance of order one in every frame; in the random plane it stays a sizeable fraction of
    ‖x‖ away"."""
    base = jax.random.fold_in(KEY, 7) if which == "chapter" else jax.random.key(17)
    for d in S["slider_dims"]:
        k_net, k_x, k_u = jax.random.split(base, 3)
        p = nets.init_params(k_net, [d, d, d])
        x = rays.typical_input(k_x, p, d, n_candidates=31)
        u = data.sphere(k_u, 1, d, radius=1.0)[0]
        f, g = gradients.value_and_input_grad(p, x[None])
        # √d · linearised relative distance = |f|/‖∇f‖ (‖x‖ = √d), the boundary's place in the
        # middle panel: 10 keys × 4 d, 0.72 ± 0.28, range 0.37 … 1.37 (inside its ±3 at every d)
        scaled = abs(float(f[0])) / float(jnp.linalg.norm(g))
        assert 0.25 <= scaled <= 2.0, (d, scaled)
        # the random plane: nearest grid point of the other sign, in units of ‖x‖
        A, B, F = rays.plane_slice(p, x, u, extent=(0.0, 2.0, -1.0, 1.0), resolution=41)
        other = np.sign(F) != np.sign(float(f[0]))
        dist = np.hypot(A - 1.0, B)[other].min() if other.any() else np.inf
        assert dist >= 0.1, (d, dist)


def test_the_phenomenon_every_shown_digit_is_classified_then_flipped():
    """§ The phenomenon: the four test digits shown are classified correctly by the network
    trained on 3s and 8s, and the smallest perturbation found flips each (verified), at a
    fraction of ‖x‖ (chapter 6 measures the same networks: tests/test_claims_ch6.py)."""
    from mini_adv import realdata, trained

    X, y = data.digits((3, 8))
    Xt, yt = data.digits((3, 8), split="test")
    net, _ = trained.train(jax.random.key(17), X, y, [64, S["digit_width"]],
                           steps=S["digit_steps"], lr=0.003)
    f0 = np.asarray(nets.apply(net, Xt[:4]))
    assert np.all(np.sign(f0) == np.asarray(yt[:4]))  # classified correctly
    found = realdata.minimal_perturbation(net, Xt[:4])
    f1 = np.asarray(nets.apply(net, np.asarray(Xt[:4]) + found.delta))
    assert found.flipped.all() and np.all(f0 * f1 < 0)
    assert np.all(found.distance / 8.0 < 0.8)
