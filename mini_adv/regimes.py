"""The closing chapter's regime map: which result covers which network, and where the book's
experiments sit.

Two kinds of frozen records, and the rule that joins them:

* :class:`Result` — one row of the regime table: a paper's result (or the book's linear
  heuristic) with its weights, architecture, width condition, activation, data, the attack
  that carries the guarantee, the flip distance, the form of the probability statement and the
  quantity this book measures for it. ``unverified`` names the fields that could not be
  checked against the paper's full text (only its abstract and introduction were available);
  the table marks them with :data:`UNVERIFIED`.
* :class:`Experiment` — one experiment of the book: chapter, weights, the width rule
  ``widths(d, v)`` → ``[d, h_1, …, h_L]`` (``v`` is the experiment's own varied parameter: a
  bottleneck width k, a depth L, a hidden width that differs between the presets, or ``None``),
  the d values of the CPU and GPU presets,
  activations, readout, data and, for trained networks, the numbers n of training points
  (or k of clusters). ``inside`` declares which results' hypotheses it satisfies.
* :func:`covering` — the book's reading of each result's hypotheses, applied to an experiment.
  For random networks the hypotheses are asymptotic (d → ∞), so the width rule is evaluated at
  large d and judged by its exponents: a width *grows* if it rises at least like d^0.05, a ratio
  h_ℓ/h_{ℓ−1} *vanishes* if it falls at least like d^−0.05. For trained networks on nearly
  orthogonal points or clusters the data condition is n·μ(X) ≤ 1/3 at every point of the
  experiment, with the typical coherence :func:`typical_coherence` of n points uniform on the
  sphere; for data on a subspace only what Melamed et al.'s abstract states (trained two-layer
  ReLU networks), with no condition on n. Real digits meet no result's data condition. The
  tests check that every experiment's declared ``inside`` is what :func:`covering` computes.

:func:`results`, :func:`experiments`, :func:`result` and :func:`table_html` (the table, † on the
unverified entries; also :func:`table_markdown`) are what the chapter uses. This module imports neither
JAX nor matplotlib; its figure is :mod:`mini_adv.figures.regimes`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

from mini_adv.validation import check_number, check_size, check_widths

UNVERIFIED = "†"
"""The mark of a table entry that could not be verified from the sources available."""

WEIGHTS = ("random", "trained")
"""The two kinds of weights: drawn at random (independent of x), or trained on the data."""

READOUTS = ("mean-zero", "non-negative")
"""Readouts of a random network: symmetric (Gaussian or ±1) or all entries ≥ 0."""

DATA = ("sphere", "nearly-orthogonal", "clusters", "subspace", "digits")
"""Inputs: one fixed x on the sphere of radius √d independent of the weights (random networks);
n nearly orthogonal training points; k clusters with nearly orthogonal means; data on a
low-dimensional subspace (chapter 6: the digits embedded in ℝ^D, d = D on the map); real
handwritten digits (chapter 6: scikit-learn's 8 × 8 digits, far from nearly orthogonal, covered
by no result)."""

RELU = frozenset({"relu"})
SMOOTH = frozenset({"tanh", "gelu", "softplus", "sin"})
"""Activations that are non-constant, Lipschitz and with a Lipschitz derivative, the condition
that opens Bubeck et al.'s Theorem 1 (x² is smooth but not Lipschitz, |x| not differentiable)."""
LOCALLY_LIPSCHITZ = frozenset({"relu", "tanh", "gelu", "softplus", "sin", "abs", "square",
                               "identity"})
"""Every activation of the book: all are locally Lipschitz (Montanari & Wu's condition)."""

COHERENCE_LIMIT = 1.0 / 3.0
"""The book's near-orthogonality condition n·μ(X) ≤ 1/3 (``lem-purity`` with c = 3)."""

_LARGE_D = (2 ** 18, 2 ** 22)  # where a width rule's exponents are read off
_EXPONENT_TOL = 0.05           # growth or decay slower than d^0.05 counts as none


@dataclasses.dataclass(frozen=True)
class Result:
    """One row of the regime table.

    Attributes:
        key: short name; the chapter's section label is ``label`` = ``"regime-" + key``.
        name: how the text names it ("Daniely & Shacham 2020").
        citation: the bibliography key, ``None`` for the book's own heuristic.
        weights: ``"random"`` or ``"trained"`` (:data:`WEIGHTS`).
        architecture: depth and form of the network.
        width_condition: the condition on the widths.
        activation: the activations covered.
        data: the input or data assumption.
        attack: the attack that carries the guarantee.
        distance: the flip distance it guarantees.
        probability_form: in what sense (O_P, with probability 1 − γ, ...).
        measured_constant: the quantity this book measures for it (a name, not a number).
        chapters: the chapters (document names) where the book treats it.
        unverified: names of the fields above that could not be verified from the sources
            available (marked :data:`UNVERIFIED` in the table).
    """

    key: str
    name: str
    citation: str | None
    weights: str
    architecture: str
    width_condition: str
    activation: str
    data: str
    attack: str
    distance: str
    probability_form: str
    measured_constant: str
    chapters: tuple[str, ...]
    unverified: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}; got {self.weights!r}")
        fields = {f.name for f in dataclasses.fields(self)} - {"key", "unverified"}
        bad = [f for f in self.unverified if f not in fields]
        if bad:
            raise ValueError(f"unverified names fields {bad} that a Result does not have")

    @property
    def label(self) -> str:
        """The label of the result's section in the closing chapter."""
        return f"regime-{self.key}"


_CHAPTERS = frozenset(f"ch{i}" for i in range(1, 7))
"""The chapters that hold experiments (the closing chapter holds none)."""


def _fixed(rule: Callable[[int], Sequence[int]]) -> Callable[[int, Any], tuple[int, ...]]:
    return lambda d, v=None: tuple(int(w) for w in rule(d))


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One experiment of the book, placed on the regime map.

    Attributes:
        chapter: ``"ch1"`` … ``"ch6"``.
        name: what it measures, as the legend names it.
        weights: ``"random"`` or ``"trained"``.
        widths: ``widths(d, v)`` → ``[d, h_1, …, h_L]`` for input dimension d and the
            experiment's varied parameter v (an element of ``variants``; for chapter 6's
            networks, whose hidden width is a preset, v is that width, or n for a network
            with one unit per training point).
        rule: the width rule as text ("[d, d/4, d/16]").
        d_values: the input dimensions at the CPU preset.
        d_values_gpu: the input dimensions at the GPU preset.
        activations: the activations it uses (names of :mod:`mini_adv.activations`).
        attack: how it finds or measures a flip.
        inside: keys of the results whose hypotheses it satisfies (what :func:`covering`
            computes; the tests check that they agree).
        variants: the values of the experiment's varied parameter (CPU preset).
        variants_gpu: the same at the GPU preset (``None``: as on the CPU).
        readout: ``"mean-zero"`` or ``"non-negative"`` (random networks).
        data: one of :data:`DATA`.
        n_values: trained networks: numbers of training points (or of clusters, for
            ``data="clusters"``) at the CPU preset; empty for random networks.
        n_values_gpu: the same at the GPU preset (``None``: as on the CPU).
    """

    chapter: str
    name: str
    weights: str
    widths: Callable[..., tuple[int, ...]]
    rule: str
    d_values: tuple[int, ...]
    d_values_gpu: tuple[int, ...]
    activations: tuple[str, ...]
    attack: str
    inside: tuple[str, ...]
    variants: tuple[Any, ...] = (None,)
    variants_gpu: tuple[Any, ...] | None = None
    readout: str = "mean-zero"
    data: str = "sphere"
    n_values: tuple[int, ...] = ()
    n_values_gpu: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.chapter not in _CHAPTERS:
            raise ValueError(f"chapter must be 'ch1' … 'ch6'; got {self.chapter!r}")
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}; got {self.weights!r}")
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}; got {self.readout!r}")
        if self.data not in DATA:
            raise ValueError(f"data must be one of {DATA}; got {self.data!r}")
        if not self.d_values or not self.d_values_gpu or not self.variants:
            raise ValueError(f"{self.name}: d_values, d_values_gpu and variants must be non-empty")
        for d in (*self.d_values, *self.d_values_gpu):
            check_size("every d", d)
        unknown = set(self.activations) - LOCALLY_LIPSCHITZ
        if not self.activations or unknown:
            raise ValueError(f"{self.name}: activations must be non-empty names from "
                             f"{sorted(LOCALLY_LIPSCHITZ)}; got {self.activations}")
        if (self.weights == "trained") != bool(self.n_values):
            raise ValueError(f"{self.name}: n_values are given exactly for trained networks")
        for n in (*self.n_values, *(self.n_values_gpu or ())):
            check_number("every n", n, integer=True, low=2, strict_low=False)
        for v in self.all_variants:
            for d in (*self.d_values, *self.d_values_gpu):
                w = check_widths(self.widths(d, v))
                if w[0] != d:
                    raise ValueError(f"{self.name}: widths(d={d}, {v!r}) must start with d; got {w}")

    @property
    def all_variants(self) -> tuple[Any, ...]:
        """The variants of both presets, without repetition, in order."""
        out = list(self.variants)
        out += [v for v in (self.variants_gpu or ()) if v not in out]
        return tuple(out)

    def preset(self, name: str) -> tuple[tuple[int, ...], tuple[Any, ...], tuple[int, ...]]:
        """``(d_values, variants, n_values)`` of the ``"cpu"`` or ``"gpu"`` preset.

        Raises:
            ValueError: for another preset name.
        """
        if name == "cpu":
            return self.d_values, self.variants, self.n_values
        if name == "gpu":
            return (self.d_values_gpu, self.variants_gpu or self.variants,
                    self.n_values_gpu if self.n_values_gpu is not None else self.n_values)
        raise ValueError(f"preset must be 'cpu' or 'gpu'; got {name!r}")

    def architectures(self, d: int) -> list[tuple[int, ...]]:
        """The widths ``[d, h_1, …, h_L]`` of every variant at input dimension d."""
        d = check_size("d", d)
        return [tuple(self.widths(d, v)) for v in self.all_variants]

    @property
    def depths(self) -> tuple[int, ...]:
        """The number of hidden layers L of each variant."""
        return tuple(len(self.widths(self.d_values[0], v)) - 1 for v in self.all_variants)


# ---- the book's reading of the hypotheses ------------------------------------------------


def width_exponents(widths: Callable[..., Sequence[int]], v: Any = None) -> tuple[float, ...]:
    """The exponents a_ℓ with h_ℓ ≈ C·d^{a_ℓ} of a width rule, read off at large d.

    a_0 = 1 is the input; a width that stays fixed has exponent 0. The exponents come from the
    rule at d = 2^18 and 2^22 (an exact power law gives its exponent up to rounding).

    Raises:
        ValueError: if the rule's depth changes with d, or it returns invalid widths.
    """
    lo, hi = (check_widths(widths(d, v)) for d in _LARGE_D)
    if len(lo) != len(hi):
        raise ValueError(f"the width rule's depth changes with d: {len(lo) - 1} and {len(hi) - 1}")
    span = math.log(_LARGE_D[1] / _LARGE_D[0])
    return tuple(math.log(b / a) / span for a, b in zip(lo, hi))


def widths_grow(widths: Callable[..., Sequence[int]], v: Any = None) -> bool:
    """Every hidden width grows at least like a small power of d (so all widths are
    polynomially related to d and to each other)."""
    return all(a >= _EXPONENT_TOL for a in width_exponents(widths, v)[1:])


def ratios_vanish(widths: Callable[..., Sequence[int]], v: Any = None) -> bool:
    """Every ratio h_ℓ/h_{ℓ−1} (with h_0 = d) tends to 0 at least like a small power of d."""
    a = width_exponents(widths, v)
    return all(a[i] - a[i - 1] <= -_EXPONENT_TOL for i in range(1, len(a)))


def typical_coherence(n: int, d: int) -> float:
    """The median of μ(X) = max_{i≠j} |⟨x_i, x_j⟩|/‖x‖² for n points uniform on a sphere in ℝ^d.

    Each normalised inner product is nearly N(0, 1/d), and the M = n(n−1)/2 of them nearly
    independent, so the median of their largest absolute value is z/√d with
    P(|Z| > z) = 1 − 2^{−1/M}. (About 2√(ln n / d) for large n; cf.
    :func:`mini_adv.data.coherence`, which measures μ(X) on a sample.)

    Raises:
        ValueError: unless n ≥ 2 and d ≥ 1 are integers.
    """
    n = check_number("n", n, integer=True, low=2, strict_low=False)
    d = check_size("d", d)
    M = n * (n - 1) / 2
    tail = -math.expm1(-math.log(2.0) / M)  # 1 − 2^{−1/M}, accurate for large M
    lo, hi = 0.0, 40.0
    for _ in range(200):  # bisection on erfc(z/√2) = tail
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if math.erfc(mid / math.sqrt(2.0)) > tail else (lo, mid)
    return 0.5 * (lo + hi) / math.sqrt(d)


def nearly_orthogonal(n: int, d: int) -> bool:
    """The book's condition n·μ(X) ≤ 1/3 at the typical coherence of n uniform points."""
    return n * typical_coherence(n, d) <= COHERENCE_LIMIT


def _points(e: Experiment) -> list[tuple[int, int]]:
    return [(d, n) for p in ("cpu", "gpu") for d, n in
            ((d, n) for d in e.preset(p)[0] for n in e.preset(p)[2])]


def _random(e: Experiment, test: Callable[[Any], bool]) -> bool:
    return (e.weights == "random" and e.readout == "mean-zero" and e.data == "sphere"
            and all(test(v) for v in e.all_variants))


def _one_hidden_layer(e: Experiment) -> bool:
    return set(e.depths) == {1}


def _in_linear(e: Experiment) -> bool:
    return _random(e, lambda v: widths_grow(e.widths, v))


def _in_daniely_shacham(e: Experiment) -> bool:
    return set(e.activations) <= RELU and _random(
        e, lambda v: widths_grow(e.widths, v) and ratios_vanish(e.widths, v))


def _in_bartlett(e: Experiment) -> bool:
    return set(e.activations) <= RELU and _random(e, lambda v: widths_grow(e.widths, v))


def _in_bubeck(e: Experiment) -> bool:
    def width_ok(v: Any) -> bool:
        if not widths_grow(e.widths, v):
            return False
        overcomplete = width_exponents(e.widths, v)[1] >= 1.0 - 1e-9 and all(
            e.widths(d, v)[1] >= d for d in _LARGE_D)
        return all(a in SMOOTH or (a == "relu" and overcomplete) for a in e.activations)
    return _one_hidden_layer(e) and set(e.activations) <= RELU | SMOOTH and _random(e, width_ok)


def _in_montanari_wu(e: Experiment) -> bool:
    return _one_hidden_layer(e) and _random(e, lambda v: widths_grow(e.widths, v))


def _trained(e: Experiment, data: str) -> bool:
    return (e.weights == "trained" and e.data == data and set(e.activations) <= RELU
            and _one_hidden_layer(e))


def _trained_nearly_orthogonal(e: Experiment, data: str) -> bool:
    return _trained(e, data) and all(nearly_orthogonal(n, d) for d, n in _points(e))


_RULES: dict[str, Callable[[Experiment], bool]] = {
    "linear": _in_linear,
    "daniely-shacham": _in_daniely_shacham,
    "bubeck": _in_bubeck,
    "bartlett": _in_bartlett,
    "montanari-wu": _in_montanari_wu,
    "vardi": lambda e: _trained_nearly_orthogonal(e, "nearly-orthogonal"),
    "frei": lambda e: _trained_nearly_orthogonal(e, "clusters"),
    "melamed": lambda e: _trained(e, "subspace"),
}


def covering(experiment: Experiment) -> tuple[str, ...]:
    """The keys of the results whose hypotheses (as this book reads them) the experiment meets.

    Random networks (weights drawn independently of a fixed input x on the sphere, mean-zero
    readout), for every variant of the experiment:

    * ``linear`` (our heuristic): every hidden width grows with d;
    * ``daniely-shacham``: ReLU, every width grows and every ratio h_ℓ/h_{ℓ−1} → 0;
    * ``bartlett``: ReLU, constant depth, every width grows polynomially in d;
    * ``bubeck``: one hidden layer; smooth activations (:data:`SMOOTH`) with a growing width,
      or ReLU with width h_1 ≥ d (our reading of "overcomplete");
    * ``montanari-wu``: one hidden layer (our reading), any growing width, any locally
      Lipschitz activation.

    Trained depth-2 ReLU networks (one hidden layer):

    * ``vardi`` (nearly orthogonal training points) and ``frei`` (clusters, k counted as n),
      each only where n·μ(X) ≤ 1/3 at every (d, n) of both presets (:func:`nearly_orthogonal`);
    * ``melamed``: data on a low-dimensional linear subspace, at any n and d. This is all that
      the paper's abstract states (two-layer networks trained by gradient methods on data on a
      subspace); its other conditions (width, scales, the subspace's dimension, the size of the
      sample) are not known to us and are marked unverified in the table, so the rule does not
      test them.

    Real digits (``data="digits"``) meet none of these data conditions: no result covers them.

    Returns:
        Keys in the order of :func:`results`.

    Raises:
        ValueError: if ``experiment`` is not an :class:`Experiment`.
    """
    if not isinstance(experiment, Experiment):
        raise ValueError(f"covering takes an Experiment; got {type(experiment).__name__}")
    return tuple(r.key for r in results() if _RULES[r.key](experiment))


# ---- the table ------------------------------------------------------------------------------

_CH = {f"ch{i}": name for i, name in enumerate(
    ["", "ch1_linear_picture", "ch2_random_matrices", "ch3_gradient_flow",
     "ch4_gaussian_conditioning", "ch5_max_margin", "ch6_real_digits"]) if i}

_RESULTS = (
    Result(
        key="linear", name="Linear picture (this book's heuristic)", citation=None,
        weights="random",
        architecture="any network that stays nearly linear on the segment to the boundary",
        width_condition="none stated; the book's experiments: every width grows with d",
        activation="any",
        data="x independent of f (a fixed x, random weights), ‖x‖ = √d",
        attack="gradient ray, or one step x − c·f(x)∇f(x)/‖∇f(x)‖²",
        distance="‖x‖·|Z|/√d in law: O_P(‖x‖/√d), and not o_P(‖x‖/√d)",
        probability_form="a heuristic; in law √d·dist/‖x‖ → |Z|, Z ~ N(0, 1)",
        measured_constant="mean of √d·dist/‖x‖ along the gradient, prediction E|Z| = √(2/π)",
        chapters=(_CH["ch1"], _CH["ch2"])),
    Result(
        key="daniely-shacham", name="Daniely & Shacham 2020", citation="daniely2020most",
        weights="random",
        architecture="fully connected ReLU, constant depth, Gaussian weights",
        width_condition="each width a vanishing fraction of the previous one "
                        "(h_ℓ/h_{ℓ−1} → 0); any further growth condition",
        activation="ReLU",
        data="a fixed x, independent of the weights",
        attack="gradient flow, or gradient descent with small enough steps "
               "(whether the flow is normalised, and the step condition)",
        distance="O(‖x‖/√d) for most networks and most x",
        probability_form="'most networks, most inputs'; whether 1 − o(1) or 1 − ε with C(ε) "
                         "(the book states it as O_P)",
        measured_constant="mean of √d·‖δ‖/‖x‖ of the normalised flow, prediction √(2/π)",
        chapters=(_CH["ch3"],),
        unverified=("width_condition", "attack", "probability_form")),
    Result(
        key="bubeck", name="Bubeck et al. 2021", citation="bubeck2021single",
        weights="random",
        architecture="two layers, f(x) = k^{−1/2} Σ a_ℓ ψ(w_ℓ·x), w_ℓ ~ N(0, I_d/d), "
                     "a_ℓ uniform ±1",
        width_condition="smooth ψ: subexponential width (e.g. k ≪ exp(o(d))); ReLU: "
                        "overcomplete and subexponential (e.g. d ≪ k ≪ exp(d^c)); the exact "
                        "conditions",
        activation="ReLU, or ψ non-constant, Lipschitz, with a Lipschitz derivative",
        data="x on the sphere of radius √d, independent of the weights",
        attack="one gradient step δ = η∇f(x) 'for some η ∈ ℝ' (its value and sign)",
        distance="roughly ‖δ‖ ≃ ‖x‖/√d = 1 (the constants)",
        probability_form="Theorem 1 opens with 'let γ ∈ (0, 1)': our reading, with "
                         "probability ≥ 1 − γ and constants depending on γ",
        measured_constant="flip rate of a fixed step s against s; the book's law "
                          "2Φ(s·Eσ′(G)²/√(Eσ(G)²)) − 1",
        chapters=(_CH["ch4"],),
        unverified=("width_condition", "attack", "distance", "probability_form")),
    Result(
        key="bartlett", name="Bartlett, Bubeck & Cherapanamjeri 2021",
        citation="bartlett2021adversarial", weights="random",
        architecture="ReLU, constant depth, independent Gaussian parameters (a depth "
                     "constraint is necessary: some deep networks are nearly constant)",
        width_condition="a large range of widths, e.g. each width polynomial in every other; "
                        "no shrinking needed (bottleneck widths set the scales)",
        activation="ReLU",
        data="a fixed x, independent of the weights",
        attack="one gradient step along −f(x)∇f(x)",
        distance="O(‖x‖/√d) for most inputs (the constants)",
        probability_form="the exact form of the statement",
        measured_constant="mean of √d·‖δ‖/‖x‖ at equal and fixed-ratio widths "
                          "(chapters 1–3), flip rate of a fixed step by depth (chapter 4)",
        chapters=(_CH["ch3"], _CH["ch1"], _CH["ch4"]),
        unverified=("distance", "probability_form")),
    Result(
        key="montanari-wu", name="Montanari & Wu 2022/23", citation="montanari2023adversarial",
        weights="random",
        architecture="random networks; two layers in the book's reading (the network class)",
        width_condition="no restriction on width (what excludes a single ReLU unit; our "
                        "reading: any width that grows)",
        activation="general locally Lipschitz",
        data="a fixed x, independent of the weights (the normalisation and readout)",
        attack="one step x′ = x − s(x)∇f(x), s(x) = sign(f(x))·s_d, 'for some positive step "
               "size s_d' (its growth)",
        distance="‖x′ − x‖ = s_d‖∇f(x)‖, i.e. O_P(s_d) on the scale ‖x‖ = √d (our estimate)",
        probability_form="'with high probability' along the gradient; the book's heuristic: "
                         "a fixed s flips a constant fraction, high probability needs s_d → ∞",
        measured_constant="flip rate against s for seven activations, and the residual of "
                          "f(x′) ≈ f(x) − s·sign(f(x))·‖∇f(x)‖²",
        chapters=(_CH["ch4"],),
        unverified=("architecture", "width_condition", "data", "attack")),
    Result(
        key="vardi", name="Vardi, Yehudai & Shamir 2022", citation="vardi2022gradient",
        weights="trained",
        architecture="depth-2 ReLU trained by gradient flow; every KKT point of the "
                     "max-margin problem",
        width_condition="any width (and biases)",
        activation="ReLU",
        data="nearly orthogonal training points (the exact condition; the book uses "
             "n·μ(X) ≤ 1/3, i.e. about n ≲ √(d/ln n)/6)",
        attack="a perturbation along −y·Σ_i y_i x_i (the book's reconstruction)",
        distance="O(‖x‖/√n), while a robust network of radius of order ‖x‖ fits the same data",
        probability_form="deterministic under the data condition (our reading)",
        measured_constant="median √n·dist/‖x‖ along −y û, idealisation 1; certified robust "
                          "radius over the trained flip",
        chapters=(_CH["ch5"],),
        unverified=("width_condition", "data", "attack", "distance", "probability_form")),
    Result(
        key="frei", name="Frei et al. 2023", citation="frei2023doubleedged",
        weights="trained",
        architecture="two-layer ReLU trained by gradient flow",
        width_condition="the width condition",
        activation="ReLU",
        data="k clusters whose means have small correlations",
        attack="a fixed direction on test points (the book: −y û)",
        distance="O(‖μ‖/√k) on test points, while robust networks of radius of order ‖μ‖ "
                 "exist (the scalings)",
        probability_form="with high probability over the sample (the form)",
        measured_constant="median flip distance over ‖μ‖/√k on test points, and test accuracy",
        chapters=(_CH["ch5"],),
        unverified=("width_condition", "attack", "distance", "probability_form")),
    Result(
        key="melamed", name="Melamed et al. 2023", citation="melamed2023adversarial",
        weights="trained",
        architecture="two-layer ReLU trained by gradient descent",
        width_condition="the width condition",
        activation="ReLU",
        data="data on a low-dimensional linear subspace",
        attack="perturbations orthogonal to the subspace, where the gradient is large",
        distance="small compared with ‖x‖ (the scale); smaller initialisation or ℓ2 "
                 "regularisation helps",
        probability_form="the form of the statement",
        measured_constant="the share ‖δ_⊥‖/‖δ‖ of the minimal perturbation off the data "
                          "subspace, and its distance, against the ambient dimension D; with "
                          "small initialisation and with weight decay",
        chapters=(_CH["ch6"], _CH["ch5"]),
        unverified=("width_condition", "distance", "probability_form")),
)


def results() -> tuple[Result, ...]:
    """The rows of the regime table, in the order of the chapter."""
    return _RESULTS


def result(key: str) -> Result:
    """The :class:`Result` with this key.

    Raises:
        ValueError: for an unknown key.
    """
    for r in _RESULTS:
        if r.key == key:
            return r
    raise ValueError(f"no result {key!r}; the keys are {[r.key for r in _RESULTS]}")


_COLUMNS = (("name", "Result"), ("weights", "Weights"), ("architecture", "Architecture"),
            ("width_condition", "Widths"), ("activation", "Activation"),
            ("data", "Data / input"), ("attack", "Attack with the guarantee"),
            ("distance", "Flip distance"), ("probability_form", "In what sense"),
            ("measured_constant", "What this book measures"), ("chapters", "Chapter"))


def table_cells() -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """The regime table as plain text: ``(header, rows)``, one row per :func:`results` entry,
    with :data:`UNVERIFIED` after every entry that could not be verified from the sources
    available. :func:`table_markdown` and :func:`table_html` format these cells."""
    def cell(r: Result, field: str) -> str:
        if field == "chapters":
            return ", ".join(str(int(c[2])) for c in r.chapters)
        text = str(getattr(r, field))
        return f"{text} {UNVERIFIED}" if field in r.unverified else text

    header = tuple(title for _, title in _COLUMNS)
    return header, tuple(tuple(cell(r, field) for field, _ in _COLUMNS) for r in _RESULTS)


def table_markdown() -> str:
    """:func:`table_cells` as a Markdown table (``|`` inside a cell escaped)."""
    header, rows = table_cells()
    line = lambda cells: "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "---|" * len(header), *map(line, rows)])


def table_html() -> str:
    """:func:`table_cells` as an HTML table (what the closing chapter displays: a notebook's
    Markdown output is not rendered as a table by the book's build, HTML is, and Colab shows
    both)."""
    import html

    header, rows = table_cells()
    head = "".join(f"<th>{html.escape(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return (f'<table class="table regime-table" style="font-size: 0.85em"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


# ---- the experiments ------------------------------------------------------------------------

_CH3_DIMS, _CH3_DIMS_GPU = (256, 512, 1024, 2048), (256, 512, 1024, 2048, 4096, 8192)
_EQUAL3 = _fixed(lambda d: [d, d, d])
_QUARTER = _fixed(lambda d: [d, d // 4, d // 16])
_TWO = _fixed(lambda d: [d, d])
_HIDDEN = lambda d, h: (d, int(h))  # noqa: E731  (one hidden layer of the preset's width h)

_EXPERIMENTS = (
    Experiment("ch1", "gradient rays against random rays", "random", _EQUAL3, "[d, d, d]",
               (16, 64, 256, 1024), (16, 64, 256, 1024, 4096, 8192), ("relu",),
               "ray flip distance along ∇f and along random directions",
               ("linear", "bartlett")),
    Experiment("ch2", "the cosine of x and ∇f against d", "random", _EQUAL3, "[d, d, d]",
               (16, 32, 64, 128, 256, 512), (16, 32, 64, 128, 256, 512, 1024, 2048), ("relu",),
               "none: the linearised distance |f|/‖∇f‖", ("linear", "bartlett")),
    Experiment("ch2", "the gradient on a ball of radius 2‖x‖/√d", "random", _EQUAL3,
               "[d, d, d]", (32, 128, 512), (32, 128, 512, 2048), ("relu",),
               "none: ∇f at random points of the ball", ("linear", "bartlett")),
    Experiment("ch3", "the flow's scaling law", "random", _QUARTER, "[d, d/4, d/16]",
               _CH3_DIMS, _CH3_DIMS_GPU, ("relu",), "normalised gradient flow",
               ("linear", "bartlett")),
    Experiment("ch3", "the gradient along the flow", "random", _QUARTER, "[d, d/4, d/16]",
               (1024,), (4096,), ("relu",), "normalised gradient flow",
               ("linear", "bartlett")),
    Experiment("ch3", "one step, flow, DeepFool, rays", "random", _QUARTER, "[d, d/4, d/16]",
               (512,), (2048,), ("relu",),
               "adaptive one step, the flow, DeepFool, gradient and random rays",
               ("linear", "bartlett")),
    Experiment("ch3", "vanishing ratios", "random",
               _fixed(lambda d: [d, round(d ** 0.75), round(d ** 0.5)]),
               "[d, d^0.75, d^0.5]", _CH3_DIMS, _CH3_DIMS_GPU, ("relu",),
               "normalised gradient flow", ("linear", "daniely-shacham", "bartlett")),
    Experiment("ch3", "a bottleneck before the readout", "random",
               lambda d, k: (d, d // 4, int(k)), "[d, d/4, k], k fixed", (512,), (2048,),
               ("relu",), "normalised gradient flow", (),
               variants=(1, 2, 4, 16, 64), variants_gpu=(1, 2, 4, 16, 64, 256)),
    Experiment("ch3", "a deep narrow stack", "random",
               lambda d, L: (d, *[32] * int(L)), "[d] + [32]·L", (512,), (2048,), ("relu",),
               "normalised gradient flow", (),
               variants=(1, 2, 4, 8, 16), variants_gpu=(1, 2, 4, 8, 16, 32)),
    Experiment("ch4", "one fixed step, ReLU", "random", _TWO, "[d, d]", (256,), (1024,),
               ("relu",), "one fixed step x − s·sign(f)∇f",
               ("linear", "bubeck", "bartlett", "montanari-wu")),
    Experiment("ch4", "one fixed step, smooth σ", "random", _TWO, "[d, d]", (256,), (1024,),
               ("tanh", "gelu", "softplus", "sin"), "one fixed step x − s·sign(f)∇f",
               ("linear", "bubeck", "montanari-wu")),
    Experiment("ch4", "one fixed step, |x| and x²", "random", _TWO, "[d, d]", (256,), (1024,),
               ("abs", "square"), "one fixed step x − s·sign(f)∇f",
               ("linear", "montanari-wu")),
    Experiment("ch4", "the first-order residual against d", "random", _TWO, "[d, d]",
               (64, 256, 1024), (64, 256, 1024, 4096), ("relu", "tanh"),
               "one fixed step x − s·sign(f)∇f", ("linear", "bubeck", "montanari-wu")),
    Experiment("ch4", "one hidden unit", "random", _fixed(lambda d: [d, 1]), "[d, 1]",
               (256,), (1024,), ("relu",), "one fixed step x − s·sign(f)∇f", ()),
    Experiment("ch4", "a readout that is not mean-zero", "random", _TWO, "[d, d], a ≥ 0",
               (256,), (1024,), ("tanh", "relu", "square"), "one fixed step x − s·sign(f)∇f",
               (), readout="non-negative"),
    Experiment("ch4", "deeper networks, equal widths", "random",
               lambda d, L: (d,) * (int(L) + 1), "[d]·(L + 1)", (256,), (256, 1024), ("relu",),
               "one fixed step x − s·sign(f)∇f", ("linear", "bartlett"),
               variants=(1, 2, 3, 4)),
    Experiment("ch5", "a trained network", "trained", _fixed(lambda d: [d, 50]), "[d, 50]",
               (500,), (2000,), ("relu",),
               "along −y û, along ∇f and random rays; KKT and unit checks", (),
               data="nearly-orthogonal", n_values=(20,), n_values_gpu=(40,)),
    Experiment("ch5", "the flip distance against n", "trained", _fixed(lambda d: [d, 32]),
               "[d, 32]", (500,), (2000,), ("relu",), "along −y û and along ∇f", (),
               data="nearly-orthogonal", n_values=(5, 10, 20, 40, 80),
               n_values_gpu=(5, 10, 20, 40, 80, 160, 320)),
    Experiment("ch5", "in regime: small n, large d", "trained", _fixed(lambda d: [d, 32]),
               "[d, 32]", (20_000,), (100_000,), ("relu",),
               "along −y û (upper bound) against the robust network's radius (lower bound)",
               ("vardi",), data="nearly-orthogonal", n_values=(4, 10), n_values_gpu=(4, 8, 12, 20)),
    Experiment("ch5", "clusters (k on the n axis)", "trained", _fixed(lambda d: [d, 32]),
               "[d, 32]", (500,), (2000,), ("relu",), "along −y û on test points", (),
               data="clusters", n_values=(10,), n_values_gpu=(20,)),
    Experiment("ch6", "a trained network on real digits", "trained", _HIDDEN,
               "[d, h], h = width", (64,), (64,), ("relu",),
               "minimal perturbation (the shorter of DeepFool and the flow), the predictions of "
               "chapters 1–3, and −y û", (),
               variants=(128,), variants_gpu=(256,), data="digits", n_values=(249,)),
    Experiment("ch6", "digits on a subspace of ℝ^D", "trained", _HIDDEN,
               "[D, h], h = sub_width", (64, 256, 1024), (64, 256, 1024, 4096, 8192), ("relu",),
               "minimal perturbation split on and off the subspace; also with small "
               "initialisation and with weight decay", ("melamed",),
               variants=(128,), variants_gpu=(256,), data="subspace", n_values=(249,)),
    Experiment("ch6", "adversarial training on digits", "trained", _HIDDEN,
               "[d, h], ℓ2 PGD at radius ε", (64,), (64,), ("relu",),
               "minimal perturbation and clean accuracy against the training radius ε", (),
               variants=(128,), variants_gpu=(256,), data="digits", n_values=(249,)),
    Experiment("ch6", "gradient descent from the robust network", "trained", _HIDDEN,
               "[d, n], one unit per point", (1000,), (4000,), ("relu",),
               "along −y û at checkpoints of normalised GD started at N_rob", (),
               variants=(10,), variants_gpu=(20,), data="nearly-orthogonal", n_values=(10,),
               n_values_gpu=(20,)),
)


def experiments() -> tuple[Experiment, ...]:
    """Every experiment of the book that tests a regime, in chapter order.

    Checks of a single tool (the random cosines of a linear model, Marchenko–Pastur spectra,
    norm propagation, the independence check of Gaussian conditioning) are not listed: they
    test a lemma, not a regime.
    """
    return _EXPERIMENTS
