"""The chapters' figures and tables (mini_adv.figures.ch1 … ch3), drawn on tiny inputs.

The figure tests check what a figure shows (its data against the results it was given and the
predictions it claims to draw), not how many artists it has. Every figure is drawn on a fresh
Agg figure (:func:`agg_figure`), closed after the test whatever happens.
"""

import math
import pathlib
import pkgutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import mini_adv  # noqa: E402
from mini_adv import attacks, data, gradients, nets, rays, rmt, scaling  # noqa: E402
from mini_adv.figures import ch1, ch2, ch3, style  # noqa: E402

PACKAGE = pathlib.Path(mini_adv.__file__).parent
SCIENCE_MODULES = sorted(  # every module and subpackage of mini_adv but mini_adv.figures
    m.name for m in pkgutil.walk_packages(mini_adv.__path__, "mini_adv.")
    if not m.name.startswith("mini_adv.figures"))


def test_every_module_is_reachable_from_the_lazy_package():
    """``mini_adv.<name>`` works for every top-level module (PEP 562 list in __init__)."""
    top = sorted({p.relative_to(PACKAGE).parts[0].removesuffix(".py")
                  for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
                 - {"__init__"})
    assert top == sorted(mini_adv._SUBMODULES)
    for name in top:
        assert getattr(mini_adv, name).__name__ == f"mini_adv.{name}"


def test_science_modules_do_not_import_matplotlib():
    assert {"mini_adv.attacks", "mini_adv.margin", "mini_adv.checks", "mini_adv.rmt"} <= set(
        SCIENCE_MODULES)
    code = (f"import mini_adv, {', '.join(SCIENCE_MODULES)}; import sys; "
            f"assert 'matplotlib' not in sys.modules, sorted(m for m in sys.modules "
            f"if m.startswith('matplotlib'))[:5]")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _draw(fig):
    fig.canvas.draw()  # rendering must not raise (bad mathtext would)


def _dashed(ax):
    return [ln for ln in ax.lines if ln.get_linestyle() == "--"]


# --- chapter 1 -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_sweep():
    return rays.sweep_rays(jax.random.key(0), [8, 16, 32], n_networks=2, n_inputs=4, n_rays=2)


def test_summary_table_has_a_row_per_dimension_and_the_prediction(ray_sweep):
    table = ch1.summary_table(ray_sweep).splitlines()
    assert [row.split()[0] for row in table[1:]] == ["8", "16", "32", "linear"]
    assert f"{rays.linear_flip_probability(2.0):.3f}" in table[-1]
    # the first column is the measured ratio over C(κ)√d
    C = rays.linear_ratio_median(2.0)
    assert float(table[2].split()[1]) == pytest.approx(ray_sweep.ratio_median[1] / (C * 4), abs=1e-3)


def test_plot_sweep_draws_the_measurements_against_the_linear_model(agg_figure, ray_sweep):
    ch1.plot_sweep(agg_figure, ray_sweep)
    _draw(agg_figure)
    ax1, ax2, ax3 = agg_figure.axes
    np.testing.assert_allclose(ax1.lines[0].get_ydata(), ray_sweep.ratio_median)
    dd = _dashed(ax1)[0]  # the prediction C(κ)√d
    np.testing.assert_allclose(dd.get_ydata(), rays.linear_ratio_median(2.0) * np.sqrt(dd.get_xdata()))
    assert ax1.get_xscale() == ax1.get_yscale() == "log"
    np.testing.assert_allclose(ax2.lines[0].get_ydata(), ray_sweep.p_flip_random)
    assert _dashed(ax2)[0].get_ydata()[0] == pytest.approx(rays.linear_flip_probability(2.0))
    assert _dashed(ax3)[0].get_ydata()[0] == pytest.approx(math.sqrt(2 / math.pi))
    for ax in (ax1, ax2, ax3):
        assert ax.get_xlabel() == "input dimension $d$" and ax.get_legend() is not None


def test_draw_planes_puts_x_at_one_and_the_gradient_ray_at_its_flip(agg_figure):
    d = 32
    p = nets.init_params(jax.random.key(1), [d, d, d])
    x = data.sphere(jax.random.key(2), 1, d)[0]
    u = data.sphere(jax.random.key(3), 1, d, radius=1.0)[0]
    ch1.draw_planes(agg_figure, p, x, u, resolution=21, title="t")
    _draw(agg_figure)
    axes = agg_figure.axes
    assert len(axes) == 3 and agg_figure._suptitle.get_text() == "t"
    # x at (1, 0) in units of ‖x‖; in the middle panel, rescaled by √d around x, at (0, 0)
    for ax, x0 in zip(axes, (1.0, 0.0, 1.0)):
        assert list(ax.lines[0].get_xdata()) == [x0] and list(ax.lines[0].get_ydata()) == [0.0]
    assert axes[1].get_xlim() == axes[1].get_ylim() == (-3.0, 3.0)  # fixed, d-rescaled axes
    # the arrow from x to the first flip along the gradient ray, at the ray's flip distance
    res = attacks.ray_flip_kernel(p, x[None], gradients.flip_direction(p, x[None]),
                                  jnp.asarray(2.0 * math.sqrt(d)))
    assert bool(res.flipped[0])
    rel = float(res.distance[0]) / math.sqrt(d)
    tip = np.asarray(axes[0].texts[0].xy) - np.array([1.0, 0.0])
    assert np.hypot(*tip) == pytest.approx(rel, rel=1e-4)
    assert np.hypot(*axes[1].texts[0].xy) == pytest.approx(math.sqrt(d) * rel, rel=1e-4)
    # the box in the left panel is the middle panel's region: half-width 3/√d
    box = axes[0].patches[-1]
    assert box.get_width() == pytest.approx(6 / math.sqrt(d))
    # the random ray x + t u, t ∈ [0, 2‖x‖], in the right panel: length 2 in units of ‖x‖
    ray = axes[2].lines[1]
    assert np.hypot(np.diff(ray.get_xdata()), np.diff(ray.get_ydata()))[0] == pytest.approx(2.0, rel=1e-5)
    with pytest.raises(ValueError, match="zoom"):
        ch1.draw_planes(agg_figure, p, x, u, zoom=0.0)


# --- chapter 2 -------------------------------------------------------------------------------


def test_plot_random_vectors_draws_each_sample_on_its_own_exact_density(agg_figure):
    key = jax.random.key(0)
    samples = {d: rmt.cosines_and_norms(jax.random.fold_in(key, d), d, 200) for d in (3, 3000)}
    ax1, ax2 = ch2.plot_random_vectors(agg_figure, samples)
    _draw(agg_figure)
    assert _legend_texts(ax1)[:2] == ["d = 3", "d = 3000"]
    # one dashed exact density per d, in the histogram's colour; the y range shows every peak
    dashed = [ln for ln in _dashed(ax1) if len(ln.get_xdata())]
    assert len(dashed) == 2
    t, y = dashed[1].get_data()
    np.testing.assert_allclose(y, rmt.cosine_density(t, 3000))
    assert ax1.get_ylim()[1] > float(y.max()) > 21  # the d = 3000 peak, √(3000/2π) ≈ 21.9
    # per-d bins: the d = 3000 histogram's bins are ~1/√d narrow, not shared with d = 3
    u, yn = [ln for ln in _dashed(ax2) if len(ln.get_xdata())][1].get_data()
    np.testing.assert_allclose(yn, rmt.norm_density(u, 3000))
    assert ax2.get_ylim()[1] > float(yn.max()) > 30  # √(2d/2π) ≈ 30.9


def test_plot_mp_histogram_draws_the_law_and_its_edges(agg_figure):
    sv = rmt.gaussian_singular_values(jax.random.key(1), 25, 100, 3)
    ax = agg_figure.subplots()
    ch2.plot_mp_histogram(ax, sv, 100, 0.25)
    _draw(agg_figure)
    dens = _dashed(ax)[0]
    np.testing.assert_allclose(dens.get_ydata(), rmt.mp_singular_density(dens.get_xdata(), 0.25),
                               rtol=1e-6)
    edges = sorted(ln.get_xdata()[0] for ln in ax.lines if ln.get_linestyle() == ":" and
                   len(ln.get_xdata()))
    assert edges == [0.5, 1.5]
    assert ax.get_ylim()[1] == pytest.approx(1.35 * float(np.max(dens.get_ydata())))
    # the histogram holds every singular value divided by √n, normalised to area 1
    heights = np.array([p.get_height() for p in ax.patches])
    widths = np.array([p.get_width() for p in ax.patches])
    assert float(np.sum(heights * widths)) == pytest.approx(1.0, rel=1e-5)
    ax2 = agg_figure.add_subplot(2, 1, 2)
    ch2.plot_mp_histogram(ax2, sv, 100, 0.25, ymax=3.9)
    assert ax2.get_ylim() == (0, 3.9)


def test_plot_norm_propagation_draws_medians_sds_and_the_length_map(agg_figure):
    key, L, N = jax.random.key(2), 3, 8
    widths = [8, 16, 32]
    rho = {w: rmt.sample_layer_norms(jax.random.fold_in(key, w), [w] * (L + 1),
                                     n_networks=N)[:, 0] for w in widths}
    sd_meas = np.array([float(np.std(np.asarray(rho[w][:, -1]) ** 2)) + 1e-3 for w in widths])
    sd_pred = np.array([math.sqrt(rmt.relu_norm_variance([w] * L)) for w in widths])
    variants = [("relu", "he", "He"), ("tanh", "lecun", "tanh")]
    v_rho = [rmt.sample_layer_norms(jax.random.fold_in(key, 99 + i), [8] * (L + 1), n_networks=N,
                                    activation=a, weight_scale=s)[:, 0]
             for i, (a, s, _) in enumerate(variants)]
    ax1, ax2, ax3 = ch2.plot_norm_propagation(agg_figure, rho, sd_meas, sd_pred, variants,
                                              v_rho, variant_width=8)
    _draw(agg_figure)
    np.testing.assert_allclose(ax1.lines[0].get_ydata(), np.median(np.asarray(rho[8]), 0))
    assert _legend_texts(ax1) == ["width 8", "width 32", "prediction 1"]
    np.testing.assert_allclose(ax2.lines[0].get_ydata(), sd_meas)
    np.testing.assert_allclose(_dashed(ax2)[0].get_ydata(), sd_pred)
    assert list(ax2.get_xticks()) == widths and ax2.get_title().endswith(f"L = {L}")
    np.testing.assert_allclose(ax3.lines[0].get_ydata(), np.asarray(v_rho[0]).mean(0))
    np.testing.assert_allclose(_dashed(ax3)[1].get_ydata(), rmt.length_map("tanh", "lecun", L))


def test_plot_cosine_scaling_draws_the_fit_and_the_prediction(agg_figure):
    out = rmt.cosine_scaling(jax.random.key(3), [8, 16, 32], hidden=(1.0,), n_networks=4,
                             n_inputs=4)
    ax1, ax2, ax3 = ch2.plot_cosine_scaling(agg_figure, out)
    _draw(agg_figure)
    pred = _dashed(ax1)[0]
    np.testing.assert_allclose(pred.get_ydata(), math.sqrt(2 / math.pi) / np.sqrt(pred.get_xdata()))
    fit = [ln for ln in ax1.lines if ln.get_linestyle() == "-"][-1]
    np.testing.assert_allclose(fit.get_ydata(), out.constant * fit.get_xdata() ** out.slope)
    assert list(ax1.get_xticks()) == [8, 16, 32]
    assert "d = 32" in _legend_texts(ax2)[0]
    np.testing.assert_allclose(ax3.lines[0].get_ydata(), out.grad_norm_cv)


def test_plot_cosine_scaling_at_one_d_draws_without_a_fit(agg_figure):
    """cosine_scaling at one d used to lack the fit's keys, and the plot raised KeyError."""
    out = rmt.cosine_scaling(jax.random.key(3), [16], hidden=(1.0,), n_networks=4, n_inputs=4)
    ax1, _, ax3 = ch2.plot_cosine_scaling(agg_figure, out)
    _draw(agg_figure)
    assert not any("fit" in t for t in _legend_texts(ax1) + _legend_texts(ax3))


def test_plot_isometry_distortion_draws_the_union_bound_only_below_one(agg_figure):
    ks, n = [2, 10, 40, 100], 100
    worst = [0.3, 0.7, 1.5, 3.0]
    ax = agg_figure.subplots()
    ch2.plot_isometry_distortion(ax, ks, n, worst)
    _draw(agg_figure)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), np.array(ks) / n)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), worst)
    q, y = _dashed(ax)[0].get_data()
    np.testing.assert_allclose(y, 2 * np.sqrt(q) + q)
    eps = np.array([rmt.union_bound_epsilon(k, n) for k in ks])
    bound = ax.lines[2]
    np.testing.assert_allclose(bound.get_ydata(), eps[eps < 1])
    assert 0 < len(bound.get_xdata()) < len(ks)
    assert "5\\%" in _legend_texts(ax)[2]


# --- chapter 3 -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flow_sweep():
    return scaling.sweep_flow(jax.random.key(4), [32, 64, 128], n_networks=3, n_inputs=4,
                              widths=lambda d: [d, 16])


def test_plot_scaling_draws_the_network_means_and_returns_the_fit(agg_figure, flow_sweep):
    ax = agg_figure.subplots()
    fit = ch3.plot_scaling(ax, flow_sweep)
    _draw(agg_figure)
    assert fit == scaling.fit_flow_scaling(flow_sweep)
    means = [np.nanmean(m.network_means()) for m in flow_sweep]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), means, rtol=1e-6)
    pred = _dashed(ax)[0]
    np.testing.assert_allclose(pred.get_ydata(), scaling.SQRT_2_OVER_PI / np.sqrt(pred.get_xdata()))
    fit_line = [ln for ln in ax.lines if ln.get_linestyle() == "-"][-1]  # power_law_axes
    np.testing.assert_allclose(fit_line.get_ydata(), fit.C * fit_line.get_xdata() ** fit.slope)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["32", "64", "128"]


def test_plot_breakdown_and_table_report_the_summaries(agg_figure, flow_sweep):
    ch3.plot_breakdown(agg_figure, [(flow_sweep, [32, 64, 128], "d", "t1"),
                                    (flow_sweep[:2], [32, 64], "d", "t2")])
    _draw(agg_figure)
    ax1, ax2 = agg_figure.axes
    np.testing.assert_allclose(ax1.lines[0].get_ydata(), [m.flip_rate for m in flow_sweep])
    assert ax2.get_title() == "t2" and len(ax2.lines[0].get_xdata()) == 2
    table = ch3.breakdown_table([(f"d = {m.d}", m) for m in flow_sweep]).splitlines()
    assert len(table) == 4 and table[1].split()[:3] == ["d", "=", "32"]
    assert f"{flow_sweep[0].flip_rate:.1%}" in table[1]


def test_methods_table_has_a_row_per_method():
    rows = [scaling.MethodRow("one", 0.5, 1.0, 1.2, 3.0, True),
            scaling.MethodRow("two", 1.0, 2.0, 1.5, 4.0, False)]
    lines = ch3.methods_table(rows).splitlines()
    assert len(lines) == 4 and lines[2].startswith("one") and lines[3].rstrip().endswith("NO")
    assert "50.0%" in lines[2]


def test_draw_flow_plane_draws_what_flow_plane_computes(agg_figure):
    """Seed fixed so that the flow crosses: the path ends on a star in both panels."""
    p = nets.init_params(jax.random.key(11), [256, 64, 16])
    x = data.sphere(jax.random.key(12), 1, 256)[0]
    out = ch3.draw_flow_plane(agg_figure, p, x, resolution=31, with_crossing_plane=True)
    _draw(agg_figure)
    assert out.crossed and len(agg_figure.axes) == 2
    for ax, pl in zip(agg_figure.axes, out.panels):
        np.testing.assert_allclose(ax.lines[0].get_xdata(), pl.a)  # the path
        star = [ln for ln in ax.lines if ln.get_marker() == "*"][0]
        assert (star.get_xdata()[0], star.get_ydata()[0]) == (pl.a[-1], pl.b[-1])
        assert "units of" in ax.get_xlabel() and "units of" in ax.get_ylabel()
    assert f"{out.distance:.2f}" in agg_figure._suptitle.get_text()


def test_draw_flow_plane_without_a_crossing_says_so(agg_figure):
    p = nets.init_params(jax.random.key(3), [64, 16, 1])
    x = data.sphere(jax.random.key(4), 1, 64)[0]
    out = ch3.draw_flow_plane(agg_figure, p, x, n_steps=50, resolution=11,
                              with_crossing_plane=True)
    assert not out.crossed and len(agg_figure.axes) == 1
    assert "no crossing" in agg_figure._suptitle.get_text()
    assert not [ln for ln in agg_figure.axes[0].lines if ln.get_marker() == "*"]


def test_draw_flow_paths_keeps_the_axes_it_is_given(agg_figure):
    """The slider's frames share one set of axes (flow_paths_limits); the right panel's dashed
    line is P(|Z| ≤ t) = erf(t/√2)."""
    frames = [scaling.flow_paths(jax.random.key(k), [64, 16, 4], n_networks=1, n_inputs=3,
                                 n_steps=60) for k in (1, 2)]
    limits = ch3.flow_paths_limits(frames)
    ch3.draw_flow_paths(agg_figure, frames[0], limits=limits)
    _draw(agg_figure)
    left, right = agg_figure.axes
    assert left.get_xlim() == (-limits[0], limits[0]) and right.get_xlim() == (0.0, limits[1])
    pred = _dashed(right)[0]
    np.testing.assert_allclose(pred.get_ydata(), [math.erf(v / math.sqrt(2)) for v in pred.get_xdata()])


def test_power_law_axes_takes_a_fit_record_or_a_mapping(agg_figure):
    ax1, ax2 = agg_figure.subplots(1, 2)
    fit = scaling.FlowScalingFit(slope=-0.5, C=2.0)
    style.power_law_axes(ax1, [4, 16], fit)
    style.power_law_axes(ax2, [4, 16], {"C": 2.0, "slope": -0.5})
    for ax in (ax1, ax2):
        x, y = ax.lines[0].get_data()
        np.testing.assert_allclose(y, 2.0 * x ** -0.5)
        assert x.min() == pytest.approx(4 / 1.3) and ax.get_xscale() == "log"
