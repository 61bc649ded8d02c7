"""The closing chapter's regime map (mini_adv.regimes, mini_adv.figures.regimes, book/regimes.ipynb).

(a) every paper the chapters cite inside a theorem-like box is a row of the regime table or a
listed tool; (b) every chapter links to a row of the map; (c) every label the chapters link to
exists in the closing chapter; (d) the records are frozen and ``covering`` is right on
hand-checked cases; (e) the figure draws one artist per experiment and rejects bad input.
"""

import dataclasses
import json
import math
import pathlib
import re

import pytest

from mini_adv import regimes

ROOT = pathlib.Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("ch*.ipynb"))
REGIMES = BOOK / "regimes.ipynb"

TOOL_CITATIONS = {  # cited next to a theorem as a [standard] tool, not a regime result
    "vershynin2018high", "vershynin2012introduction", "ledoux2001concentration", "wainwright2019high",
    "marchenko1967distribution", "bai2010spectral",      # random matrices, concentration
    "he2015delving", "hanin2018which", "poole2016exponential",  # norm propagation at initialisation
    "bolthausen2012iterative",                           # Gaussian conditioning
    "lyu2020gradient", "ji2020directional", "nacson2019convergence", "soudry2018implicit",
    "vardi2022margin", "du2018algorithmic",              # implicit bias, KKT points, balance
    "gilmer2018adversarial", "fawzi2018adversarial",     # isoperimetry: existence only
    "goodfellow2015explaining",                          # the linear hypothesis
    "vandervaart1998asymptotic",                         # Slutsky, the delta method
    "shamir2019simple",                                  # the Hamming-distance predecessor
}
LABELS = {"regimes", "regime-table", "regime-figure", "regime-open", "regime-linear",
          "regime-daniely-shacham", "regime-bartlett", "regime-bubeck", "regime-montanari-wu",
          "regime-vardi", "regime-frei", "regime-melamed"}

_BOX = re.compile(r"^(:{3,}|`{3,})\{prf:(theorem|lemma|proposition|corollary)\}")
_CITE = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")
_REF = re.compile(r"\{(?:ref|numref)\}`(?:[^`<]*<)?([^`<>]+)>?`")
_TARGET = re.compile(r"^\((\S+)\)=\s*$", re.M)


def _markdown(path: pathlib.Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def boxed_citations(text: str) -> set[str]:
    """Citation keys inside {prf:theorem}/lemma/proposition/corollary boxes (title included)."""
    lines, keys, i = text.splitlines(), set(), 0
    while i < len(lines):
        m = _BOX.match(lines[i])
        if not m:
            i += 1
            continue
        fence = m.group(1)
        close = re.compile(rf"^{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        body = [lines[i]]
        i += 1
        while i < len(lines) and not close.match(lines[i]):
            body.append(lines[i])
            i += 1
        for group in _CITE.findall("\n".join(body)):
            keys |= {k.strip() for k in group.split(",") if k.strip()}
    return keys


def regime_links(text: str) -> set[str]:
    """The labels ``regime-*`` (and ``regimes``) that ``{ref}``/``{numref}`` roles point to."""
    return {label for label in _REF.findall(text) if label == "regimes" or label.startswith("regime-")}


# ---- the checkers on synthetic input ------------------------------------------------------


def test_boxed_citations_reads_only_the_boxes():
    text = "\n".join([
        "Outside {cite}`outside2020`.",
        ":::{prf:theorem} A result {cite:p}`title2020` [paper]",
        ":label: thm-x",
        "Body {cite}`a2020, b2021` and {cite:t}`c2022`.",
        ":::",
        "::::{prf:lemma} Nested [reconstruction]",
        ":::{note}",
        "{cite}`inner2019`",
        ":::",
        "::::",
        ":::{prf:remark} Remarks do not count {cite}`remark2018`",
        ":::",
        "```{prf:corollary} Backticks [standard]",
        "{cite}`tick2017`",
        "```",
    ])
    assert boxed_citations(text) == {"title2020", "a2020", "b2021", "c2022", "inner2019", "tick2017"}


def test_regime_links_finds_plain_and_titled_refs():
    text = ("See {ref}`regime-bartlett`, {ref}`the map <regime-figure>`, {ref}`regimes`, "
            "{numref}`regime-table`, {ref}`thm-other`, and {doc}`regimes`.")
    assert regime_links(text) == {"regime-bartlett", "regime-figure", "regimes", "regime-table"}
    assert regime_links("no links at all {ref}`lem-ball`") == set()


# ---- (a)–(c): the book against the table ---------------------------------------------------


def test_every_paper_cited_in_a_theorem_box_is_a_row_of_the_table_or_a_tool():
    citations = {r.citation for r in regimes.results() if r.citation}
    assert not citations & TOOL_CITATIONS
    for chapter in CHAPTERS:
        stray = boxed_citations(_markdown(chapter)) - citations - TOOL_CITATIONS
        assert not stray, (f"{chapter.name} cites {sorted(stray)} in a theorem box: add a row to "
                           f"mini_adv.regimes.results(), or list it in TOOL_CITATIONS if it is a tool")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_links_to_its_rows_of_the_regime_map(chapter):
    assert {lab for lab in regime_links(_markdown(chapter)) if lab.startswith("regime-")}, (
        f"{chapter.name} links to no regime-* label of the closing chapter")


def test_the_closing_chapter_defines_every_label_and_every_link_lands():
    defined = set(_TARGET.findall(_markdown(REGIMES)))
    assert LABELS <= defined
    assert {r.label for r in regimes.results()} <= defined
    for chapter in CHAPTERS:
        missing = regime_links(_markdown(chapter)) - defined
        assert not missing, f"{chapter.name} links to {sorted(missing)}, which regimes.ipynb lacks"


def test_the_closing_chapter_generates_its_table_from_the_records_and_is_clean():
    nb = json.loads(REGIMES.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "regimes.table_html()" in code and "plot_regimes" in code
    assert all(c.get("outputs", []) == [] for c in nb["cells"] if c["cell_type"] == "code")
    text = _markdown(REGIMES)
    for r in regimes.results():
        if r.citation:
            assert r.citation in text, f"the section of {r.name} does not cite it"
    assert "Further reading" in text and regimes.UNVERIFIED in text


# ---- (d): the records and covering ----------------------------------------------------------


def _random(rule, inside=(), activations=("relu",), **kw):
    return regimes.Experiment("ch3", "test", "random", lambda d, v=None: tuple(rule(d)), "rule",
                              (256, 1024), (4096,), activations, "flow", inside, **kw)


def test_records_are_frozen():
    r, e = regimes.results()[0], regimes.experiments()[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.key = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.d_values = (1,)


def test_results_have_the_labels_and_unverified_fields_they_name():
    keys = [r.key for r in regimes.results()]
    assert {f"regime-{k}" for k in keys} == LABELS - {"regimes", "regime-table", "regime-figure",
                                                       "regime-open"}
    assert regimes.result("bartlett").citation == "bartlett2021adversarial"
    with pytest.raises(ValueError, match="no result"):
        regimes.result("nobody")
    with pytest.raises(ValueError, match="unverified"):
        dataclasses.replace(regimes.result("frei"), unverified=("colour",))


@pytest.mark.parametrize("rule, expected", [
    (lambda d: [d, d, d], {"linear", "bartlett"}),                        # equal widths
    (lambda d: [d, d // 4, d // 16], {"linear", "bartlett"}),            # fixed ratios
    (lambda d: [d, round(d ** 0.75), round(d ** 0.5)], {"linear", "daniely-shacham", "bartlett"}),
    (lambda d: [d, round(d ** 0.5)], {"linear", "daniely-shacham", "bartlett", "montanari-wu"}),
    (lambda d: [d, 2 * d], {"linear", "bubeck", "bartlett", "montanari-wu"}),  # overcomplete
    (lambda d: [d, d // 2], {"linear", "bartlett", "montanari-wu"}),      # k < d: not Bubeck
    (lambda d: [d, d // 4, 16], set()),                                   # a fixed bottleneck
    (lambda d: [d, 1], set()),                                            # one hidden unit
], ids=["equal", "quarter", "vanishing", "undercomplete", "overcomplete", "half", "bottleneck",
        "one-unit"])
def test_covering_on_hand_checked_relu_networks(rule, expected):
    assert set(regimes.covering(_random(rule))) == expected


def test_covering_follows_the_activation_and_the_readout():
    two = lambda d: [d, d]  # noqa: E731
    assert set(regimes.covering(_random(two, activations=("tanh",)))) == {
        "linear", "bubeck", "montanari-wu"}
    assert set(regimes.covering(_random(two, activations=("square",)))) == {"linear", "montanari-wu"}
    assert regimes.covering(_random(two, readout="non-negative")) == ()


def test_covering_of_trained_networks_reads_the_coherence_condition():
    def trained(n, d, data="nearly-orthogonal"):
        return regimes.Experiment("ch5", "t", "trained", lambda d, v=None: (d, 16), "[d, 16]",
                                  (d,), (d,), ("relu",), "-y u", (), data=data, n_values=(n,))
    assert regimes.covering(trained(10, 100_000)) == ("vardi",)
    assert regimes.covering(trained(20, 500)) == ()
    assert regimes.covering(trained(10, 100_000, "clusters")) == ("frei",)
    # Melamed et al.'s abstract states no condition on n: subspace data far from nearly
    # orthogonal are covered, real digits never are
    assert regimes.covering(trained(249, 64, "subspace")) == ("melamed",)
    assert regimes.covering(trained(10, 100_000, "digits")) == ()
    deep = dataclasses.replace(trained(249, 64, "subspace"), widths=lambda d, v=None: (d, 16, 16))
    assert regimes.covering(deep) == ()
    smooth = dataclasses.replace(trained(249, 64, "subspace"), activations=("tanh",))
    assert regimes.covering(smooth) == ()
    # n·μ = 1/3 where typical_coherence says: 3 n z_M = √d
    n = 10
    d_star = (3 * n * regimes.typical_coherence(n, 1)) ** 2
    assert regimes.nearly_orthogonal(n, math.ceil(d_star * 1.01))
    assert not regimes.nearly_orthogonal(n, math.floor(d_star * 0.99))


def test_typical_coherence_is_the_median_of_the_largest_gaussian_correlation():
    # M = 1 pair: the median of |N(0, 1/d)| is 0.6745/√d
    assert regimes.typical_coherence(2, 100) == pytest.approx(0.67449 / 10, rel=1e-4)
    # for many points it is close to 2√(ln n / d) (within 15 % at n = 1000)
    assert regimes.typical_coherence(1000, 10_000) == pytest.approx(
        2 * math.sqrt(math.log(1000) / 10_000), rel=0.15)
    with pytest.raises(ValueError):
        regimes.typical_coherence(1, 100)


def test_every_experiment_declares_what_covering_computes():
    for e in regimes.experiments():
        assert regimes.covering(e) == e.inside, f"{e.chapter} {e.name!r}"
    assert {e.chapter for e in regimes.experiments()} == {f"ch{i}" for i in range(1, 7)}
    covered = {k for e in regimes.experiments() for k in e.inside}
    assert {"daniely-shacham", "bubeck", "bartlett", "montanari-wu", "vardi", "melamed"} <= covered
    # chapter 6: the real digits are covered by nothing, the subspace experiment by Melamed et al.
    by_name = {e.name: e for e in regimes.experiments() if e.chapter == "ch6"}
    assert by_name["a trained network on real digits"].inside == ()
    assert by_name["digits on a subspace of ℝ^D"].inside == ("melamed",)
    assert {e.data for e in by_name.values()} >= {"digits", "subspace"}


def test_experiment_rejects_bad_records():
    with pytest.raises(ValueError, match="chapter"):
        dataclasses.replace(regimes.experiments()[0], chapter="ch7")  # the closing chapter
    with pytest.raises(ValueError, match="data"):
        dataclasses.replace(regimes.experiments()[0], data="mnist")
    with pytest.raises(ValueError, match="weights"):
        dataclasses.replace(regimes.experiments()[0], weights="pretrained")
    with pytest.raises(ValueError, match="activations"):
        _random(lambda d: [d, d], activations=("swish",))
    with pytest.raises(ValueError, match="n_values"):
        dataclasses.replace(regimes.experiments()[0], weights="trained")
    with pytest.raises(ValueError, match="start with d"):
        _random(lambda d: [d + 1, d])
    with pytest.raises(ValueError):
        regimes.covering("not an experiment")
    with pytest.raises(ValueError, match="preset"):
        regimes.experiments()[0].preset("tpu")


# ---- (e): the figure ------------------------------------------------------------------------


def test_plot_regimes_draws_one_artist_per_experiment(agg_figure):
    from mini_adv.figures import regimes as fig_regimes

    exps = regimes.experiments()
    ax_r, ax_t = fig_regimes.plot_regimes(agg_figure, exps)
    agg_figure.canvas.draw()
    artists = [c for ax in (ax_r, ax_t) for c in ax.collections
               if (c.get_gid() or "").startswith("experiment:")]
    assert len(artists) == len(exps)
    assert sorted(a.get_gid() for a in artists) == sorted(f"experiment:{e.chapter}:{e.name}"
                                                          for e in exps)
    assert len([c for c in ax_t.collections if (c.get_gid() or "").startswith("experiment:")]) == sum(
        e.weights == "trained" for e in exps)
    for ax in (ax_r, ax_t):
        assert ax.get_xscale() == ax.get_yscale() == "log"
        assert ax.get_xlabel() == "input dimension $d$" and ax.get_ylabel()
        assert [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    # the in-regime trained experiment is filled, the n = 20 one hollow
    by_gid = {a.get_gid(): a for a in artists}
    inside = by_gid["experiment:ch5:in regime: small n, large d"]
    outside = by_gid["experiment:ch5:a trained network"]
    assert inside.get_facecolors()[0][:3].tolist() != [1.0, 1.0, 1.0]
    assert outside.get_facecolors()[0][:3].tolist() == [1.0, 1.0, 1.0]
    # chapter 6's real digits (d = 64, n = 249) lie inside panel (b) and are labelled
    digits = by_gid["experiment:ch6:a trained network on real digits"]
    (x, y), = digits.get_offsets().tolist()
    assert (x, y) == (64, 249)
    (x0, x1), (y0, y1) = ax_t.get_xlim(), ax_t.get_ylim()
    assert x0 < x < x1 and y0 < y < y1
    notes = {t.get_gid(): t for t in ax_t.texts if (t.get_gid() or "").startswith("data:")}
    assert set(notes) == {"data:digits", "data:subspace"}
    assert "digits" in notes["data:digits"].get_text() and notes["data:digits"].xy == (64, 249)
    assert "Melamed" in notes["data:subspace"].get_text()
    assert digits.get_facecolors()[0][:3].tolist() == [1.0, 1.0, 1.0]  # no theorem: hollow
    assert by_gid["experiment:ch6:digits on a subspace of ℝ^D"].get_facecolors()[0][:3].tolist() != [
        1.0, 1.0, 1.0]


def test_plot_regimes_places_the_points_at_the_widths_ratios(agg_figure):
    from mini_adv.figures import regimes as fig_regimes

    e = regimes.experiments()[3]  # [d, d/4, d/16]
    ax_r, _ = fig_regimes.plot_regimes(agg_figure, [e], preset="gpu")
    pts = ax_r.collections[-1].get_offsets()
    assert sorted(pts[:, 0].tolist()) == sorted(e.d_values_gpu)
    assert pts[:, 1].tolist() == pytest.approx([0.25] * len(e.d_values_gpu))


@pytest.mark.parametrize("bad, match", [([], "at least one"), (["x"], "Experiment")])
def test_plot_regimes_rejects_bad_input(agg_figure, bad, match):
    from mini_adv.figures import regimes as fig_regimes

    with pytest.raises(ValueError, match=match):
        fig_regimes.plot_regimes(agg_figure, bad)
    with pytest.raises(ValueError, match="preset"):
        fig_regimes.plot_regimes(agg_figure, regimes.experiments()[:1], preset="tpu")


def _presets(chapter: str) -> dict[str, set[int]]:
    """Every integer of a chapter's size presets, ``{"cpu": {...}, "gpu": {...}}``, read from
    its ``runtime.sizes(cpu=dict(...), gpu=dict(...))`` cell (``conftest.chapter_preset``)."""
    from conftest import chapter_preset

    def ints(value) -> set[int]:
        if isinstance(value, (list, tuple)):
            return set().union(*map(ints, value)) if value else set()
        return {value} if isinstance(value, int) and not isinstance(value, bool) else set()

    return {preset: set().union(*map(ints, chapter_preset(chapter, preset).values()))
            for preset in ("cpu", "gpu")}


@pytest.mark.parametrize("exp", regimes.experiments(), ids=lambda e: f"{e.chapter}-{e.name}")
def test_every_experiment_on_the_map_has_its_chapters_sizes(exp):
    """The map's sizes are the chapters' own: every d, n and varied value of an experiment, at
    each preset, is a size of that chapter's preset (a map that drifted from the chapters fails)."""
    sizes = _presets(exp.chapter)
    for preset, d_values, variants, n_values in (
            ("cpu", exp.d_values, exp.variants, exp.n_values),
            ("gpu", exp.d_values_gpu, exp.variants_gpu or exp.variants,
             exp.n_values_gpu or exp.n_values)):
        wanted = {*d_values, *(v for v in variants if isinstance(v, int)), *(n_values or ())}
        missing = wanted - sizes[preset]
        assert not missing, f"{exp.chapter} '{exp.name}': {sorted(missing)} not in its {preset} preset"


def test_the_table_has_one_row_per_result_and_marks_every_unverified_entry():
    header, rows = regimes.table_cells()
    assert len(rows) == len(regimes.results()) and all(len(r) == len(header) for r in rows)
    for result, row in zip(regimes.results(), rows):
        assert row[0].startswith(result.name)
        assert sum(c.count(regimes.UNVERIFIED) for c in row) == len(result.unverified), result.key
    page = regimes.table_html()
    assert page.count("<tr>") == len(rows) + 1 and "&amp;" in page and " & " not in page
    md = regimes.table_markdown().splitlines()
    assert len(md) == len(rows) + 2 and all(line.count(" | ") == len(header) - 1 for line in md[2:])
