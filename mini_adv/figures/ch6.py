"""Chapter 6's figures: digits, their minimal perturbations, and what training does to them.

:func:`draw_perturbations` is the picture readers expect first: images x, their perturbations
δ (magnified, on their own colour scale) and the perturbed images x + δ (on the colour scale of
x). The other functions draw the chapter's measurements; each takes plain arrays or the records
of :mod:`mini_adv.realdata` and draws on a given figure or axes.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from mini_adv.figures.style import CYCLE, PALETTE
from mini_adv.realdata import ClassMeanFlips, RobustStart, SubspacePoint

IMAGE_CMAP = "PuOr_r"
"""A diverging colour map: the images are centred (the mean training image is subtracted), so
a pixel is darker or lighter than average; white is the average grey level."""


def _side(d: int) -> int:
    side = math.isqrt(d)
    if side * side != d:
        raise ValueError(f"the images must be square: d = {d} is not a square number")
    return side


def magnification(Delta: Any, target: float) -> float:
    """The factor k that brings the largest |δ| pixel up to ``target``, rounded down to 1, 2
    or 5 times a power of ten (so the label "δ × k" reads easily); 1 if δ is already as large."""
    small = float(np.abs(np.asarray(Delta, float)).max())
    if small == 0 or target <= small:
        return 1.0
    e = 10.0 ** math.floor(math.log10(target / small))
    return float(max(m * e for m in (1, 2, 5) if m * e <= target / small))


def draw_perturbations(fig: Any, X: Any, Delta: Any, *, pixels: Any = None, scale: Any = None,
                       labels: Sequence[str] | None = None, title: str = "") -> float:
    """Three rows of images: x, δ × k and x + δ, one column per example.

    With ``pixels`` and ``scale`` (from :func:`mini_adv.data.digit_pixels`) the images are
    shown as grey levels: p, c·δ × k and p + c·δ (a digit's ink dark on white); otherwise the
    centred rows x themselves on a diverging map. x and x + δ share one colour scale, so the
    perturbed image is shown exactly as the network sees it; δ is magnified by k
    (:func:`magnification`) and drawn on a symmetric scale of the same size, labelled "δ × k".
    Under each column: ‖δ‖/‖x‖ (in the book's units, where ‖x‖ = √d) and, if given,
    ``labels[i]`` (e.g. the network's decision before → after).

    Args:
        fig: an empty matplotlib figure.
        X: ``(n, d)`` inputs in the book's units, d a square number (digits: d = 64).
        Delta: ``(n, d)`` perturbations in the same units.
        pixels: optional ``(n, d)`` grey levels of the same images.
        scale: ``(n,)`` factors c_i with p_i = p̄ + c_i x_i (needed with ``pixels``).
        labels: optional ``n`` strings written under the columns.
        title: the figure's title.

    Returns:
        The magnification k.

    Raises:
        ValueError: for mismatched shapes, a non-square d, or ``pixels`` without ``scale``.
    """
    X, Delta = np.asarray(X, float), np.asarray(Delta, float)
    if X.ndim != 2 or X.shape != Delta.shape:
        raise ValueError(f"X and Delta must have the same shape (n, d); got {X.shape} and {Delta.shape}")
    n, d = X.shape
    side = _side(d)
    ratio = np.linalg.norm(Delta, axis=1) / np.linalg.norm(X, axis=1)
    if pixels is None:
        base, shown = X, Delta
        lo, hi, cmap = -np.abs(X).max(), np.abs(X).max(), IMAGE_CMAP
    else:
        if scale is None:
            raise ValueError("pixels needs scale: pass both from data.digit_pixels")
        base = np.asarray(pixels, float)
        shown = Delta * np.asarray(scale, float).reshape(-1, 1)
        if base.shape != X.shape:
            raise ValueError(f"pixels must have the shape of X {X.shape}; got {base.shape}")
        both = np.concatenate([base, base + shown])
        lo, hi, cmap = min(both.min(), 0.0), both.max(), "gray_r"
    half = (hi - lo) / 2
    k = magnification(shown, half)
    axes = fig.subplots(3, n, squeeze=False)
    rows = [("x", base, lo, hi, cmap), (f"δ × {k:g}", k * shown, -half, half, IMAGE_CMAP),
            ("x + δ", base + shown, lo, hi, cmap)]
    for r, (name, A, vmin, vmax, cm) in enumerate(rows):
        for i in range(n):
            ax = axes[r, i]
            im = ax.imshow(A[i].reshape(side, side), cmap=cm, vmin=vmin, vmax=vmax,
                           interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(name, fontsize="large")
        bar = fig.colorbar(im, ax=axes[r].tolist(), shrink=0.9, pad=0.02)
        bar.set_label("grey level" if pixels is not None and r != 1 else
                      ("change × k" if r == 1 else "centred value"), fontsize="small")
    for i in range(n):
        text = f"‖δ‖/‖x‖ = {ratio[i]:.2f}"
        if labels is not None:
            text += f"\n{labels[i]}"
        axes[2, i].set_xlabel(text)
    if title:
        fig.suptitle(title)
    return k


def plot_subspace(fig: Any, sweeps: Mapping[str, Sequence[SubspacePoint]], *, d: int = 64
                  ) -> None:
    """Digits embedded in ℝ^D (:func:`mini_adv.realdata.subspace_sweep`), one line per training
    variant. Left: the median share ‖δ_⊥‖/‖δ‖ of the minimal perturbation off the data subspace,
    with √(1 − d/D) dashed (a direction uniform in ℝ^D, which ignores the data). Right: the
    median minimal distance ‖δ‖/‖x‖. Log scale in D."""
    ax, right = fig.subplots(1, 2)
    Ds = None
    for (label, points), color in zip(sweeps.items(), CYCLE):
        Ds = np.array([p.D for p in points], float)
        ax.plot(Ds, [p.median_off_share for p in points], "o-", color=color, label=label)
        right.plot(Ds, [p.median_distance for p in points], "o-", color=color, label=label)
    grid = np.geomspace(Ds.min(), Ds.max(), 60)
    ax.plot(grid, np.sqrt(np.clip(1 - d / grid, 0, None)), "--", color=PALETTE["theory"],
            label=r"$\sqrt{1 - d/D}$ (a random direction)")
    ax.set(ylabel=r"share off the subspace $\|\delta_\perp\|/\|\delta\|$", ylim=(-0.02, 1.02),
           title="(a) where the minimal perturbation points")
    right.set(ylabel=r"minimal distance $\|\delta\|/\|x\|$", ylim=(0, None),
              title="(b) how far it goes")
    for a in (ax, right):
        a.set(xscale="log", xlabel=f"ambient dimension $D$ (data on a {d}-dimensional subspace)")
        a.set_xticks(Ds, [f"{int(v)}" for v in Ds])
        a.xaxis.set_minor_formatter(_null())
        a.legend(fontsize="small", loc="best")


def plot_defence(ax: Any, radii: Sequence[float], median_distance: Sequence[float],
                 test_accuracy: Sequence[float]) -> None:
    """Adversarial training at radius ε: the median minimal distance on test digits (left
    axis, against the line ‖δ‖ = ε, dashed: the distance the training radius asks for) and
    the test accuracy (right axis)."""
    radii = np.asarray(radii, float)
    ax.plot(radii, median_distance, "o-", color=PALETTE["gradient"],
            label="median minimal distance (test digits)")
    ax.plot(radii, radii, "--", color=PALETTE["theory"], label=r"$\|\delta\| = \varepsilon$")
    ax.set(xlabel=r"training radius $\varepsilon$ (units of $\|x\|/\sqrt{d} = 1$)",
           ylabel=r"minimal $\ell_2$ distance $\|\delta\|$")
    right = ax.twinx()
    right.plot(radii, test_accuracy, "s:", color=PALETTE["random"], label="test accuracy (right axis)")
    right.set_ylabel("test accuracy", color=PALETTE["random"])
    right.set_ylim(0.5, 1.01)
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right")




def _null() -> Any:
    from matplotlib.ticker import NullFormatter

    return NullFormatter()


_CARRY_ROWS = (
    ("euler_max", "Euler residual (largest, relative)", ".1e"),
    ("linear_over_minimal", "linearised / minimal distance", ".3f"),
    ("cos_sqrt_d", "|cos(x, grad f)| sqrt(d) (mean)", ".3f"),
    ("minimal_sqrt_d", "sqrt(d) |delta| / |x| (median)", ".3f"),
    ("p_flip_gradient", "gradient rays that flip", ".0%"),
    ("p_flip_random", "random rays that flip", ".0%"),
    ("ratio_median", "random / gradient flip distance", ".1f"),
)


def carry_over_table(predicted: Mapping[str, float], measured: Mapping[str, Mapping[str, float]]
                     ) -> str:
    """The random-network predictions beside the measurements on each network (a text table;
    keys of :meth:`mini_adv.realdata.CarryOver.summary`)."""
    names = list(measured)
    lines = [f"{'quantity':<36}{'random-net theory':>18}" + "".join(f"{n:>13}" for n in names)]
    for key, label, fmt in _CARRY_ROWS:
        row = f"{label:<36}{format(predicted[key], fmt):>18}"
        row += "".join(f"{format(measured[n][key], fmt):>13}" for n in names)
        lines.append(row)
    return "\n".join(lines)


def plot_distance_hist(ax: Any, distances: Mapping[str, Any], *, d: int) -> None:
    """Histograms of √d·‖δ‖/‖x‖, the minimal distance in the book's unit ‖x‖/√d, one per
    network, with the random-network law |Z| (Z ~ N(0, 1), the half-normal density) dashed."""
    series = {k: np.asarray(v, float) for k, v in distances.items()}
    top = max(np.percentile(v[np.isfinite(v)], 99) for v in series.values())
    bins = np.linspace(0, 1.05 * top, 30)
    for (label, v), color in zip(series.items(), CYCLE):
        ax.hist(v[np.isfinite(v)], bins=bins, density=True, alpha=0.55, color=color, label=label)
    t = np.linspace(0, bins[-1], 200)
    ax.plot(t, np.sqrt(2 / np.pi) * np.exp(-t * t / 2), "--", color=PALETTE["theory"],
            label=r"law of $|Z|$ (random networks)")
    ax.set(xlabel=r"minimal distance $\sqrt{d}\,\|\delta\|/\|x\|$ (units of $\|x\|/\sqrt{d}$)",
           ylabel="density")
    ax.legend()


def plot_class_mean(fig: Any, flips: ClassMeanFlips) -> None:
    """Left: the class-mean direction û as an 8 × 8 image. Right: the distance along
    −sign(f(x))·û against the minimal distance, one point per test digit, with y = x dashed."""
    left, ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    u = np.asarray(flips.direction, float)
    side = _side(u.size)
    m = np.abs(u).max()
    im = left.imshow(u.reshape(side, side), cmap=IMAGE_CMAP, vmin=-m, vmax=m,
                     interpolation="nearest")
    left.set(xticks=[], yticks=[], title=r"$\hat u \propto \sum_i y_i x_i$ (entries)")
    fig.colorbar(im, ax=left, shrink=0.8, location="left", pad=0.04)
    ok = np.isfinite(flips.class_mean) & np.isfinite(flips.minimal)
    ax.scatter(flips.minimal[ok], flips.class_mean[ok], s=14, color=PALETTE["gradient"],
               label="test digits")
    hi = 1.05 * max(flips.minimal[ok].max(), flips.class_mean[ok].max())
    ax.plot([0, hi], [0, hi], "--", color=PALETTE["theory"], label="equal distances")
    ax.set(xlim=(0, hi), ylim=(0, hi), xlabel=r"minimal distance $\|\delta\|$",
           ylabel=r"flip distance along $-\mathrm{sign}(f(x))\,\hat u$")
    ax.legend(loc="lower right")


def plot_robust_start(ax: Any, run: RobustStart) -> None:
    """Normalised GD started at the robust network: the median flip distance along −y û over
    ‖x‖ at each checkpoint (left axis, with 1/√n dashed: the KKT idealisation, and 1/2
    dotted: the robust network's radius on orthogonal data), the normalised margin (right)."""
    ax.plot(run.steps, run.median, "o-", color=PALETTE["gradient"],
            label=r"median flip along $-y\hat u$, over $\|x\|$")
    ax.axhline(run.predicted, ls="--", color=PALETTE["theory"],
               label=r"$1/\sqrt{n}$ (KKT idealisation)")
    ax.axhline(0.5, ls=":", color=PALETTE["theory"],
               label=r"$1/2$ (robust radius, orthogonal data)")
    ax.set(xlabel=r"steps of normalised gradient descent from $N_{\rm rob}$",
           ylabel=r"flip distance $/\,\|x\|$", ylim=(0, None))
    right = ax.twinx()
    right.plot(run.steps, run.normalized_margin, "s:", color=PALETTE["random"],
               label=r"normalised margin $\bar\gamma$ (right axis)")
    right.set_ylabel(r"normalised margin $\bar\gamma$", color=PALETTE["random"])
    lines, more = ax.get_legend_handles_labels(), right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="center right", fontsize="small")
