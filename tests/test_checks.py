"""mini_adv.checks: every checker passes the reference solution and names typical mistakes.

The reference solutions are the chapters' solution dropdowns, read from the notebooks and
executed as written, so a solution that no longer passes its checker fails here. Every test draws its
random cases from ``fresh_key``; the wrong answers are the mistakes students make (wrong
shape, sign, factor, NaN, an exception, the untouched stub), and each verdict is checked
for the words that name the mistake.
"""

import dataclasses
import math
import pathlib
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mini_adv import checks, gradients, nets, rmt

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import student_edition  # noqa: E402

# ---------------------------------------------------------------------------------------------
# reference solutions: the code of the chapters' solution dropdowns, executed as written
# ---------------------------------------------------------------------------------------------


def chapter_solution(chapter: str, name: str):
    """The function ``name`` as chapter ``chapter``'s solution dropdown defines it, run with
    the chapter's imports (jax, jnp, np, math and the package's modules)."""
    notebook = ROOT / "book" / f"{chapter}.ipynb"
    for block in student_edition.source_solutions(notebook):
        for code in re.findall(r"```python\n(.*?)```", block, re.S):
            if f"def {name}(" in code:
                namespace = {"jax": jax, "jnp": jnp, "np": np, "math": math,
                             "gradients": gradients, "nets": nets, "rmt": rmt}
                exec(compile(code, f"{notebook.name}:solution", "exec"), namespace)
                return namespace[name]
    raise LookupError(f"{notebook.name} has no solution defining {name}")


linear_flip_distance = chapter_solution("ch1_linear_picture", "linear_flip_distance")
outside_band = chapter_solution("ch2_random_matrices", "outside_band")
my_flow = chapter_solution("ch3_gradient_flow", "my_flow")
my_moments = chapter_solution("ch4_gaussian_conditioning", "my_moments")
ngd_direction = chapter_solution("ch5_max_margin", "ngd_direction")


def _flow(params, x0, alpha, mu, max_steps, direction):
    """The chapter's Python loop; ``direction=-1`` steps away from the boundary (a bug)."""
    f, g = gradients.value_and_input_grad(params, x0[None])
    s = jnp.sign(f[0])
    h_min = mu * abs(f[0]) / jnp.linalg.norm(g[0])
    x, length = x0, 0.0
    for _ in range(max_steps):
        gn = jnp.linalg.norm(g[0])
        h = max(alpha * abs(f[0]) / gn, h_min)
        x = x - direction * s * h * g[0] / gn
        length += h
        f, g = gradients.value_and_input_grad(params, x[None])
        if s * f[0] < 0:
            return float(length)
    return None


def stub(*args, **kwargs):
    raise NotImplementedError("your code here")


def oops(*args, **kwargs):
    raise ValueError("oops")


def nan_like(value):
    return jax.tree.map(lambda a: a * jnp.nan, value)


L = checks.check_linear_flip_distance
B = checks.check_outside_band
F = checks.check_my_flow
M = checks.check_my_moments
N = checks.check_ngd_direction

REFERENCES = [(L, linear_flip_distance), (B, outside_band), (F, my_flow), (M, my_moments),
              (N, ngd_direction)]
IDS = ["ch1", "ch2", "ch3", "ch4", "ch5"]


# ---------------------------------------------------------------------------------------------
# typical wrong answers and the words their verdict must contain
# ---------------------------------------------------------------------------------------------

WRONG = {
    # chapter 1: linear_flip_distance(w, X) -> (B,)
    "ch1-shape": (L, lambda w, X: linear_flip_distance(w, X)[:, None],
                  ["wrong output shape: expected (1,), got (1, 1)", "case 1 (d = 2, B = 1)"]),
    "ch1-sign": (L, lambda w, X: -linear_flip_distance(w, X),
                 ["opposite sign", "on every case", "sign convention"]),
    "ch1-no-abs": (L, lambda w, X: (X @ w) / jnp.linalg.norm(w), ["sign is wrong in some entries"]),
    "ch1-no-norm": (L, lambda w, X: jnp.abs(X @ w), ["off by a factor of ‖w‖ on every case"]),
    "ch1-norm-squared": (L, lambda w, X: jnp.abs(X @ w) / jnp.sum(w * w),
                         ["off by a factor of 1/‖w‖ on every case"]),
    "ch1-times-2": (L, lambda w, X: 2 * linear_flip_distance(w, X),
                    ["off by a factor of about 2 on every case"]),
    "ch1-sqrt-d": (L, lambda w, X: linear_flip_distance(w, X) / math.sqrt(X.shape[1]),
                   ["off by a factor of 1/√d"]),
    "ch1-cosine": (L, lambda w, X: linear_flip_distance(w, X) / jnp.linalg.norm(X, axis=1),
                   ["wrong values on", "expected"]),
    "ch1-nan": (L, lambda w, X: nan_like(linear_flip_distance(w, X)),
                ["returned NaN or inf on case 1"]),
    "ch1-list": (L, lambda w, X: list(linear_flip_distance(w, X)),
                 ["returned a list", "(a jax or numpy array)"]),
    "ch1-int": (L, lambda w, X: linear_flip_distance(w, X).astype(jnp.int32),
                ["wrong dtype: expected floating-point numbers, got int32"]),
    "ch1-raises": (L, oops, ["oops raised ValueError on case 1 (d = 2, B = 1): oops"]),
    # chapter 2: outside_band(key, m, n, draws, t=2.0) -> one number
    "ch2-inside": (B, lambda key, m, n, draws, t=2.0: 1 - outside_band(key, m, n, draws, t),
                   ["fraction inside the band", "on every case"]),
    "ch2-count": (B, lambda key, m, n, draws, t=2.0:
                  min(m, n) * draws * outside_band(key, m, n, draws, t),
                  ["off by a factor of min(m, n)·draws"]),
    "ch2-fixed-key": (B, lambda key, m, n, draws, t=2.0:
                      outside_band(jax.random.key(0), m, n, draws, t),
                      ["draw the matrices with the key argument"]),
    "ch2-shape": (B, lambda key, m, n, draws, t=2.0: outside_band(key, m, n, draws, t)[None],
                  ["expected a single number", "got an array of shape (1,)"]),
    "ch2-no-t": (B, lambda key, m, n, draws: outside_band(key, m, n, draws),
                 ["raised TypeError on case 1", "unexpected keyword argument 't'"]),
    "ch2-nan": (B, lambda *a, **k: nan_like(outside_band(*a, **k)), ["NaN or inf"]),
    "ch2-raises": (B, oops, ["raised ValueError on case 1", "oops"]),
    # chapter 3: my_flow(params, x0, alpha=0.1, mu=1e-3, max_steps=1000) -> path length
    "ch3-away": (F, lambda p, x0, alpha=0.1, mu=1e-3, max_steps=1000:
                 _flow(p, x0, alpha, mu, max_steps, -1),
                 # |f| grows until x overflows, f and ∇f vanish in a dead region, or a
                 # long step lands across a kink on the other side
                 [("NaN or inf", "returned None (no crossing)", "wrong values")]),
    "ch3-no-return": (F, lambda *a, **k: my_flow(*a, **k) and None,
                      ["returned None (no crossing)", "with the default alpha and mu",
                       "does every step move f towards 0"]),
    "ch3-times-2": (F, lambda *a, **k: 2 * my_flow(*a, **k),
                    ["off by a factor of about 2 on every case"]),
    "ch3-sign": (F, lambda *a, **k: -my_flow(*a, **k), ["opposite sign"]),
    "ch3-defaults-only": (F, lambda p, x0, alpha=0.1, mu=1e-3, max_steps=1000: my_flow(p, x0),
                          # without alpha and mu the flow may also not cross in 1000 steps
                          [("use the alpha and mu that it is given",
                            "the step sizes that alpha and mu set")]),
    "ch3-nan": (F, lambda *a, **k: math.nan, ["returned NaN or inf on case 1"]),
    "ch3-string": (F, lambda *a, **k: "1.0", ["returned '1.0'"]),
    "ch3-raises": (F, oops, ["raised ValueError on case 1", "oops"]),
    # chapter 4: my_moments(sigma, n=40) -> (E σ(G)², E σ'(G)²)
    "ch4-weights": (M, lambda s, n=40: tuple(math.sqrt(2 * math.pi) * v for v in my_moments(s, n)),
                    ["off by a factor of about 2.51 on every case"]),
    "ch4-swapped": (M, lambda s, n=40: my_moments(s, n)[::-1],
                    ["the two numbers are in the wrong order"]),
    "ch4-one-number": (M, lambda s, n=40: my_moments(s, n)[0],
                       ["returned a float", "expected a pair"]),
    "ch4-three": (M, lambda s, n=40: my_moments(s, n) + (0.0,),
                  ["tuple of length 3", "expected a pair"]),
    "ch4-second-wrong": (M, lambda s, n=40: (my_moments(s, n)[0], 2 * my_moments(s, n)[1]),
                         ["wrong values on", "expected ("]),
    "ch4-nan": (M, lambda s, n=40: (math.nan, math.nan), ["NaN or inf"]),
    "ch4-raises": (M, oops, ["raised ValueError on case 1", "oops"]),
    # chapter 5: ngd_direction(params, X, y, log_space=True) -> pytree like params
    "ch5-naive-only": (N, lambda p, X, y, log_space=True: ngd_direction(p, X, y, log_space=False),
                       ["returned NaN or inf on case 5", "parameters × 30"]),
    "ch5-sign": (N, lambda *a, **k: jax.tree.map(jnp.negative, ngd_direction(*a, **k)),
                 ["opposite sign", "on every case"]),
    "ch5-sum-vs-mean": (N, lambda p, X, y, **k:
                        jax.tree.map(lambda a: a / X.shape[0], ngd_direction(p, X, y, **k)),
                        ["off by a factor of 1/n on every case"]),
    "ch5-times-2": (N, lambda *a, **k: jax.tree.map(lambda a: 2 * a, ngd_direction(*a, **k)),
                    ["off by a factor of about 2 on every case"]),
    "ch5-leaves": (N, lambda *a, **k: jax.tree.leaves(ngd_direction(*a, **k)),
                   ["with another structure", "expected a pytree like params"]),
    "ch5-leaf-shape": (N, lambda *a, **k: dataclasses.replace(
        ngd_direction(*a, **k), readout=ngd_direction(*a, **k).readout[:, None]),
        ["wrong output shape: expected (8,), got (8, 1)"]),
    "ch5-raises": (N, oops, ["raised ValueError on case 1", "oops"]),
}


@pytest.mark.parametrize("checker, solution", REFERENCES, ids=IDS)
def test_the_reference_solution_passes_on_fresh_cases(checker, solution, fresh_key, capsys):
    result = checker(solution, key=fresh_key)
    assert result.passed, result.message
    assert result.message == f"passed ({result.cases} random cases)"
    assert result.cases >= 5
    assert capsys.readouterr().out.strip() == result.message  # printed once, in plain words


@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_typical_mistake_fails_with_the_right_message(name, fresh_key):
    checker, wrong, words = WRONG[name]
    result = checker(wrong, key=fresh_key, verbose=False)
    assert not result.passed
    assert result.message.startswith("failed: ")
    for w in words:  # a tuple: any one of its phrases
        assert any(p in result.message for p in ((w,) if isinstance(w, str) else w)), result.message


@pytest.mark.parametrize("checker", [r[0] for r in REFERENCES], ids=IDS)
def test_the_stub_gets_a_friendly_verdict_and_raises_nothing(checker, fresh_key, capsys):
    result = checker(stub, key=fresh_key)
    assert not result.passed and result.cases == 0
    assert result.message == "not implemented yet: stub still raises NotImplementedError"
    assert capsys.readouterr().out.strip() == result.message


@pytest.mark.parametrize("checker", [r[0] for r in REFERENCES], ids=IDS)
def test_misuse_raises_value_error(checker):
    with pytest.raises(ValueError, match="expects your function itself"):
        checker(3.0)
    with pytest.raises(ValueError, match="expects your function itself"):
        checker(linear_flip_distance(jnp.ones(3), jnp.ones((2, 3))))  # a result, not a function
    for bad_key in (0, jax.random.split(jax.random.key(0), 2), np.zeros(2)):
        with pytest.raises(ValueError, match="key must be one PRNG key"):
            checker(stub, key=bad_key)


def test_a_long_verdict_is_printed_wrapped_to_the_width_of_a_cell(fresh_key, capsys):
    result = checks.check_linear_flip_distance(WRONG["ch1-cosine"][1], key=fresh_key)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 1 and max(len(line) for line in lines) <= 79
    assert " ".join(" ".join(lines).split()) == result.message


def test_a_raw_uint32_key_is_accepted():
    assert checks.check_linear_flip_distance(linear_flip_distance, key=jax.random.PRNGKey(3),
                                             verbose=False).passed


def test_fresh_cases_name_their_seed_and_the_seed_repeats_them():
    wrong = WRONG["ch1-cosine"][1]
    first = checks.check_linear_flip_distance(wrong, verbose=False)
    seed = int(first.message.split("[seed ")[1].split(":")[0])
    again = checks.check_linear_flip_distance(wrong, key=jax.random.key(seed), verbose=False)
    assert first.message.startswith(again.message)  # the same cases, the same verdict
    assert "key=" not in again.message  # a given key is not repeated back


def test_check_result_is_a_plain_frozen_record():
    result = checks.CheckResult(passed=True, message="passed (5 random cases)", cases=5)
    assert str(result) == "passed (5 random cases)"
    assert repr(result) == "CheckResult(passed=True, message='passed (5 random cases)', cases=5)"
    assert not hasattr(result, "_repr_html_")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.passed = False


def test_the_engine_refuses_to_pass_with_zero_usable_cases(monkeypatch):
    """A checker whose case generator yields nothing must fail, not certify ``passed (0 cases)``."""
    monkeypatch.setattr(checks, "_FLOW_CASES", ())
    result = checks.check_my_flow(lambda params, x0, **kw: 1.0, key=jax.random.key(0),
                                  verbose=False)
    assert not result.passed and result.cases == 0
    assert "no usable random case" in result.message


def test_fitted_network_fails_when_no_draw_fits_the_data(monkeypatch):
    """The chapter-5 cases need margins above 200; if no draw gives them, the checker raises."""
    robust = checks.margin.robust_params
    monkeypatch.setattr(checks.margin, "robust_params",
                        lambda X, y: jax.tree.map(jnp.zeros_like, robust(X, y)))
    with pytest.raises(RuntimeError, match="margin above 200"):
        checks.check_ngd_direction(lambda params, X, y, log_space=True: params,
                                   key=jax.random.key(0), verbose=False)
