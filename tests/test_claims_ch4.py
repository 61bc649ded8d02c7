"""What chapter 4's prose says the reader sees, asserted at the chapter's own CPU sizes.

Each test calls the functions the chapter's cells call, on the sizes of the chapter's CPU preset
(``chapter_preset("ch4")``). Tolerances come from the spread over seeds measured when the
claims were written (24 seeds for the seven activations, 8 for the residual and depth runs),
written beside each bound. Where the chapter's run is too slow for this file, fewer networks
are used and the comment says so. Already asserted elsewhere: the m = 1 network never flips
(``tests/test_conditioning.py::test_one_hidden_relu_unit_never_flips``), the exact moments
(``test_relu_moments_are_one_half_and_others_exact``).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import chapter_preset

from mini_adv import conditioning, data

S = chapter_preset("ch4")
ACTIVATIONS = ["relu", "tanh", "gelu", "softplus", "sin", "abs", "square"]
S_GRID = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0]


@pytest.fixture(scope="module")
def chapter_run():
    """The chapter's networks (cell "draw_networks") with every activation, as in its cells."""
    params, X = conditioning.draw_networks(jax.random.key(41), [S["d"], S["d"]],
                                           n_networks=S["networks"], n_inputs=S["inputs"])
    results = {a: conditioning.one_step_samples(params.replace(activation=a), X, S_GRID)
               for a in ACTIVATIONS}
    return params, X, results


def test_first_figure_half_flip_and_the_band_separates(chapter_run):
    """§ The question: about half flip at s = 1 (law erf(1/2) = 0.52); more than nine in ten
    points inside the band flip and more than nine in ten outside do not."""
    _, _, results = chapter_run
    r = results["relu"]
    rate = r.flip_rate[r.index(1.0)]
    assert 0.45 < rate < 0.59  # 24 seeds: 0.489 … 0.537
    inside, outside = conditioning.band_fractions(r, 1.0)
    assert inside > 0.9 and outside > 0.9  # 24 seeds: inside ≥ 0.915, outside ≥ 0.952
    assert np.mean(r.grad_norm) == pytest.approx(math.sqrt(0.5), rel=0.05)  # spread < 1 %


def test_magnitudes_match_the_lemma(chapter_run):
    """After lem-magnitudes: Var f within 20 % of E σ(Z)², mean ‖∇f‖² within 3 % of E σ'(Z)²."""
    _, _, results = chapter_run
    for a, r in results.items():
        sm = r.summary()
        assert abs(sm["var_f"] / sm["var_f_predicted"] - 1) < 0.2, a  # 24 seeds: 0.884 … 1.139
        assert abs(sm["grad_sq"] / sm["grad_sq_predicted"] - 1) < 0.03, a  # 0.982 … 1.021


def test_seven_activations_deviation_panel(chapter_run):
    """§ seven activations: every rate within a few hundredths of its law; ReLU and |x| below
    the law at every s from 2 to 3."""
    _, _, results = chapter_run
    for a, r in results.items():
        dev = r.flip_rate - r.predicted_flip_rate()
        assert np.all(np.abs(dev) < 0.08), (a, dev)  # 24 seeds: |dev| ≤ 0.043 smooth, ≤ 0.06 kinks
    for a in ("relu", "abs"):
        r = results[a]
        for s in (2.0, 2.5, 3.0):
            i = r.index(s)
            assert r.flip_rate[i] < r.predicted_flip_rate()[i], (a, s)  # 24 seeds: dev ≤ −0.006


def test_slider_matched_step_and_square_spread(chapter_run):
    """§ Interactive figure: at the matched step every activation flips close to 1/2; x² has
    the most spread-out ‖∇f‖² of the seven, and it is correlated with |f(x)|."""
    params, X, results = chapter_run
    for a in ACTIVATIONS:
        m = conditioning.one_step_samples(params.replace(activation=a), X,
                                          [conditioning.step_for_flip_probability(a, 0.5)])
        assert abs(m.flip_rate[0] - 0.5) < 0.07, a  # one seed: 0.45 … 0.51 (kinks lowest)
    cv = {a: np.std(r.grad_norm**2) / np.mean(r.grad_norm**2) for a, r in results.items()}
    assert max(cv, key=cv.get) == "square"  # 24 seeds: 0.199 ± 0.002, next gelu 0.167 ± 0.003
    sq = results["square"]
    corr = np.corrcoef(np.abs(sq.f).ravel(), (sq.grad_norm**2).ravel())[0, 1]
    assert corr > 0.15  # 24 seeds: 0.258 ± 0.018


def test_positive_readout(chapter_run):
    """§ readout: tanh's rates move by a few hundredths at most; ReLU and x² never flip; their
    mean f sits at √(2m/π)·E σ(Z)."""
    params, X, results = chapter_run
    for a in ("tanh", "relu", "square"):
        r = conditioning.one_step_samples(
            params.replace(activation=a, readout=jnp.abs(params.readout)), X, S_GRID)
        if a == "tanh":
            assert np.max(np.abs(r.flip_rate - results[a].flip_rate)) < 0.07  # 24 seeds: ≤ 0.034
        else:
            assert r.flip_rate.max() == 0.0
            offset = conditioning.positive_readout_offset(a, S["d"])
            assert float(r.f.mean()) == pytest.approx(offset, rel=0.03)  # 24 seeds: within 1 %


def test_independence_printout(fresh_key):
    """§ conditioning: the three correlations within a few standard errors 1/√N of zero; the
    two spreads of ⟨P⊥w, u⟩ agree with √(1/(2d)) within a few percent; ⟨w, u⟩ at |g| > 1.5
    spreads about twice as far (prediction √(1 + E[Z² | |Z| > 1.5]) ≈ 2.2)."""
    k1, k2, k3 = jax.random.split(fresh_key, 3)
    params, _ = conditioning.draw_networks(k1, [S["d"], S["d"]], n_networks=S["networks"])
    ind = conditioning.independence_samples(k3, params, data.sphere(k2, 1, S["d"])[0])
    sm = ind.summary()
    n = sm["n_rows"]
    for k in ("corr_g_perp_u", "corr_absg_abs_perp_u", "corr_absg_perp_norm_sq"):
        assert abs(sm[k]) < 4.5 / math.sqrt(n), k  # null: each is N(0, 1/N)
    pred = math.sqrt(0.5 / S["d"])
    for k in ("sd_perp_u_big_g", "sd_perp_u_small_g"):
        assert sm[k] == pytest.approx(pred, rel=0.05), k  # relative s.e. ≤ 0.8 %
    assert 1.9 < sm["sd_wu_big_g"] / sm["sd_perp_u_big_g"] < 2.5


def test_residual_slopes():
    """§ first-order picture: tanh's residual falls like 1/d; ReLU's is larger at every d and its
    fitted slope lies between −3/4 and −1/2."""
    spread = {}
    for a in ("relu", "tanh"):
        runs = [conditioning.sample_one_step(jax.random.key(10 + d), [d, d], S_GRID,
                                             n_networks=n, n_inputs=S["inputs"], activation=a)
                for d, n in zip(S["resid_dims"], S["resid_networks"])]
        spread[a] = conditioning.residual_scaling(runs, 1.0)
    assert -1.15 < spread["tanh"].slope < -0.85  # 8 seeds: −1.029 … −0.988
    assert -0.75 < spread["relu"].slope < -0.5  # 8 seeds: −0.653 … −0.626
    assert np.all(np.asarray(spread["relu"].sd) > np.asarray(spread["tanh"].sd))
    assert np.max(spread["relu"].sd) < 0.1  # small against E|f| ≈ 0.56


def test_depth_claims():
    """§ deeper networks, with a quarter of the chapter's networks per depth (time): the residual grows
    with L and is smaller at the larger d; ‖∇f‖² within a few percent of 1; most inputs still
    flip at s = 2 at L = 4 and the larger d."""
    n = S["depth_networks"] // 4
    sd = {}
    for d in S["depth_dims"]:
        sd[d] = []
        for L in S["depths"]:
            r = conditioning.sample_one_step(jax.random.key(30 + 10 * L + d), [d] * (L + 1),
                                             S_GRID, n_networks=n, n_inputs=S["inputs"],
                                             weight_scale="he")
            sd[d].append(r.residual_sd(1.0))
            assert abs(np.mean(r.grad_norm**2) - 1) < 0.12  # 8 seeds (128 nets): 0.95 … 1.05
            if d == max(S["depth_dims"]) and L == max(S["depths"]):
                assert r.flip_rate[r.index(2.0)] > 0.65  # 8 seeds (128 nets): 0.79 … 0.84; s.e. ≈ 0.02 here
        assert np.all(np.diff(sd[d]) > 0), sd[d]  # 8 seeds: each step up ≥ 40 %
    big, small = max(S["depth_dims"]), min(S["depth_dims"])
    assert np.all(np.asarray(sd[big]) < np.asarray(sd[small]))  # 8 seeds: ratio ≈ 0.4


def test_bias_exercise_signs():
    """ex-ch4-bias's solution, with 128 networks × 32 inputs instead of 512: at d = 256 the
    drift E[sign(f) R] at s = 2 is positive and decreases from m = 64 to 256 to 1024, and the
    flip-rate bias is negative."""
    drift = []
    for m in (64, 256, 1024):
        r = conditioning.sample_one_step(jax.random.key(m), [256, m], [2.0], n_networks=128,
                                         n_inputs=32)
        drift.append(float(np.mean(np.sign(r.f) * r.residual[0])))
        assert r.flip_rate[0] < r.predicted_flip_rate()[0], m
    assert drift[0] > drift[1] > drift[2] > 0, drift
