"""What chapter 3's prose says the reader sees, asserted at the chapter's own CPU preset.

Each test calls the package functions the chapter's cells call, with the sizes read from the
chapter (``chapter_preset("ch3")``), and asserts the ranges the prose states. The spreads in
the comments were measured over fresh seeds (keys 1000 + k) at these sizes; each band is at
least about 3.5 standard deviations from the mean, so that a fair run never fails while a flow
that is 20 % too long, or an attack that flips too little, does.

Claims asserted elsewhere (not repeated here):
- the vanishing-ratio sweep (§ "Widths whose ratios vanish": at least nine in ten flip at
  every d, √d·mean ‖δ‖/‖x‖ within a factor 1.75 of √(2/π)):
  ``tests/test_scaling.py::test_vanishing_ratio_sweep_follows_the_chapters_claim``, at this
  preset;
- a one-unit bottleneck never flips (§ "Where the phenomenon weakens"):
  ``tests/test_scaling.py::test_one_unit_bottleneck_never_flips``;
- every flip reported is verified in float64:
  ``tests/test_scaling.py::test_every_flip_claimed_in_the_chapter_is_verified``.
"""

import math

import jax
import numpy as np
import pytest
from conftest import chapter_preset

from mini_adv import attacks, data, nets, scaling
from mini_adv.attacks import Status

S = chapter_preset("ch3")


def test_the_gradient_barely_changes_along_the_flow(fresh_key):
    """§ "Checking the lemmas": the median of min_t ‖∇f(x(t))‖/‖∇f(x₀)‖ is above 4/5, its
    5 % quantile above 1/2; the median T/(|f₀|/‖∇f(x₀)‖) is below 1.1; at least nine paths in
    ten have T ≤ 1.05 |f₀|/g_min. Over 12 seeds: median 0.949 ± 0.015 (s.d.; min 0.914);
    5 % quantile 0.753 ± 0.052 (min 0.639); median T/linear 1.026 ± 0.012 (max 1.060);
    fraction with T ≤ 1.05 bound 0.999 (min 0.992)."""
    fg = scaling.gradient_along_flow(fresh_key, scaling.shrinking_widths(S["lemma_d"]),
                                     n_networks=S["lemma_networks"], n_inputs=S["n_inputs"])
    ok = fg.crossed
    assert ok.mean() > 0.95
    g_min = fg.g_min_ratio[ok]
    assert np.median(g_min) > 0.8 and np.quantile(g_min, 0.05) > 0.5
    assert np.median(fg.time[ok] / fg.f0_over_g0[ok]) < 1.1
    assert np.mean(fg.time[ok] / fg.bound[ok] <= 1.05) >= 0.9


def test_the_fixed_ratio_sweep(fresh_key):
    """§ "The scaling law" and "How straight is the path?" at the chapter's sweep: fitted slope
    within ±0.25 of −1/2; at slope −1/2 the mean √d‖δ‖/‖x‖ within a quarter of √(2/π); at every
    d at least 95 % flipped (the rest stopped at ∇f = 0), median flow/linear within 5 %, median
    path/‖δ‖ below 1.03; at the largest d no path more than 10 % longer than its displacement, the median less than 2 %.
    Spread over seeds: see the comment at the end of this test."""
    sweep = scaling.sweep_flow(fresh_key, S["dims"], n_networks=S["sweep_networks"],
                               n_inputs=S["n_inputs"])
    fit = scaling.fit_flow_scaling(sweep)
    assert abs(fit.slope + 0.5) < 0.25, fit
    c_half = math.exp(np.mean([math.log(m.summary()["sqrt_d_rel_distance"]) for m in sweep]))
    assert 0.75 < c_half / scaling.SQRT_2_OVER_PI < 1.25, c_half
    for m in sweep:
        s = m.summary()
        assert s["flip_rate"] >= 0.95, s
        assert np.all(m.status[~m.flipped] == Status.ZERO_DIRECTION), s
        assert m.all_verified
        assert 1.0 <= s["flow_over_linear_median"] < 1.05, s
        assert s["path_over_distance_median"] < 1.03, s
    last = sweep[-1]
    fl = last.flipped
    excess = last.rel_path[fl] / last.rel_distance[fl] - 1
    assert excess.max() < 0.10 and np.median(excess) < 0.02
    # Spread: the chapter's own run (key 3) prints slope −0.53 ± 0.16 (2 s.e.) and
    # c_half/√(2/π) = 0.97; test_scaling's vanishing-ratio sweep at this preset had a geometric
    # mean of 1.064 ± 0.058 over 40 seeds, and a slope s.e. of about 0.08 follows from the
    # printed error bars: the bands ±0.25 and ±25 % are about 3–4 s.d. Not re-measured over
    # many seeds here (each run of this sweep costs 10–25 s on the shared CPU).


def test_the_comparison_table(fresh_key):
    """§ "One step, the flow, DeepFool and rays", at the chapter's size and counts: the flow's
    median ‖δ‖/linear within 5 % of 1, dozens of evaluations; the straight ray longer than the
    flow; DeepFool within 10 % of the flow in at most four evaluations; one step flips fewer
    than 4/5 at κ = 1.1 and more than 4/5 at κ = 2; the random ray needs more than 10 times the
    linearised distance. Over 12 seeds with 8 networks (half the chapter's, so the spreads
    below are upper bounds): flip rate at κ = 1.1 0.557 ± 0.085 (max 0.656), at κ = 2
    0.947 ± 0.044 (min 0.844); flow/linear 1.019 ± 0.009 (max 1.039); DeepFool/flow
    1.047 ± 0.017 (max 1.082); DeepFool's evaluations ≤ 2.33; ray/flow ≥ 1.029; random ray
    over linear ≥ 28; flow evaluations 55.7 … 59.0."""
    rows = scaling.compare_methods(fresh_key, scaling.shrinking_widths(S["compare_d"]),
                                   n_networks=S["compare_networks"], n_inputs=S["n_inputs"])
    by = {r.method: r for r in rows}
    flow, deepfool = by["gradient flow"], by["DeepFool"]
    assert flow.flip_rate > 0.95 and abs(flow.over_linear_median - 1) < 0.05
    assert 20 < flow.evaluations < 100
    assert by["ray along the gradient"].over_linear_median > flow.over_linear_median
    assert deepfool.over_linear_median < 1.1 * flow.over_linear_median
    assert deepfool.evaluations <= 4
    assert by["one step, κ = 1.1"].flip_rate < 0.8 < by["one step, κ = 2"].flip_rate
    assert by["random ray (≤ 2‖x‖)"].over_linear_median > 10
    assert all(r.verified for r in rows)


def test_one_step_flips_more_at_larger_d(fresh_key):
    """The solution of ``ex-ch3-step``: at κ = 1.2 the flip rate of one adaptive step is higher
    at d = 1024 than at d = 256 (16 networks × 16 inputs each). Over 12 seeds: 0.610 ± 0.046
    at d = 256, 0.843 ± 0.040 at d = 1024; the difference was at least 0.11."""
    rates = []
    for d in (256, 1024):
        p = nets.init_params(jax.random.fold_in(fresh_key, d), scaling.shrinking_widths(d), n=16)
        X = data.sphere_batches(jax.random.fold_in(fresh_key, d + 1), 16, 16, d)
        rates.append(np.mean([float(attacks.gradient_step(jax.tree.map(lambda a, i=i: a[i], p),
                                                          X[i], c=1.2).success_rate)
                              for i in range(16)]))
    assert rates[1] > rates[0], rates


def _slider_frames_hold(key):
    for d in (S["slider_dims"][0], S["slider_dims"][-1]):
        P = scaling.flow_paths(jax.random.fold_in(key, d), scaling.shrinking_widths(d),
                               n_networks=S["slider_networks"], n_inputs=S["slider_inputs"])
        assert P.crossed.mean() >= 0.9
        t = np.sort(P.distance[P.crossed])
        n = P.crossed.size
        cdf = np.array([math.erf(v / math.sqrt(2)) for v in t])
        ks = max(np.max(np.arange(1, t.size + 1) / n - cdf), np.max(cdf - np.arange(t.size) / n))
        assert ks < 0.35, (d, ks)
        assert np.nanmax(np.abs(P.a)) < 1.5
        assert np.median(P.path[P.crossed] / P.distance[P.crossed]) < 1.06


def test_the_interactive_figure(fresh_key):
    """§ "Interactive figure", at the smallest and the largest of the slider's d (the chapter
    draws every d in between; two keep the test short), with the chapter's counts: every
    frame's flows cross (at least nine in ten), the paths stay nearly straight (median excess
    length below 6 %, sideways drift |a| below 1.5 units), and the fraction flipped within t is
    close to P(|Z| ≤ t): Kolmogorov distance below 0.35. Over 10 seeds: Kolmogorov distance
    0.11 … 0.15 at the smallest d and 0.14 … 0.26 at the largest (32 paths, 4 networks);
    |a| ≤ 0.59; median excess ≤ 1.8 %; every path crossed. A soak run then found |a| up to 1.06
    and a median excess of 3.7 % (the regression seeds below): bounds |a| < 1.5, excess < 6 %."""
    _slider_frames_hold(fresh_key)


@pytest.mark.parametrize("seed", [550516798, 410213015])
def test_the_interactive_figure_soak_regressions(seed):
    """Two seeds of a soak run (3 fresh draws per test) that broke the first bounds, set from 10
    seeds: sideways drift |a| 1.06 (bound 1) and median excess length 3.7 % (bound 3 %). Both
    still show nearly straight paths; the bounds are now |a| < 1.5 and excess < 6 %."""
    _slider_frames_hold(jax.random.key(seed))
