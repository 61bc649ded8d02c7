"""Chapter 6: bias-free ReLU MLPs trained on real digits, plain and adversarial (mini_adv.trained).

The settings are the ones measured on scikit-learn's digits (3, 8): 249 training and 108 test
points, d = 64, ‖x‖ = 8; widths [64, 128], 300 full-batch Adam steps at lr = 3·10⁻³ train in
well under a second once compiled. The measured values are in comments next to each bound.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mini_adv import attacks, data, gradients, nets, trained

WIDTHS = [64, 128]
STEPS, LR = 300, 3e-3
ADV = dict(eps=2.0, steps=5)   # ε = 2 = ‖x‖/4, 5 PGD steps of 2.5 ε/5 = 1.0


@pytest.fixture(scope="module")
def digits():
    Xtr, ytr = data.digits((3, 8), split="train")
    Xte, yte = data.digits((3, 8), split="test")
    return Xtr, ytr, Xte, yte


@pytest.fixture(scope="module")
def plain(digits):
    Xtr, ytr, _, _ = digits
    return trained.train(jax.random.key(0), Xtr, ytr, WIDTHS, steps=STEPS, lr=LR)


@pytest.fixture(scope="module")
def adversarial(digits):
    Xtr, ytr, _, _ = digits
    return trained.train(jax.random.key(0), Xtr, ytr, WIDTHS, steps=STEPS, lr=LR,
                         adversarial=ADV)


def _sqnorm(p):
    return float(sum(jnp.sum(a * a) for a in jax.tree.leaves(p)))


def _same(p, q):
    return all(bool(jnp.array_equal(a, b)) for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(q)))


def test_plain_training_fits_the_digits_and_generalises(digits, plain):
    Xtr, ytr, Xte, yte = digits
    params, h = plain
    assert isinstance(params, nets.MLPParams)
    assert params.biases is None and params.activation == "relu" and params.weight_scale is None
    assert params.widths == tuple(WIDTHS)
    assert [k.shape for k in params.kernels] == [(64, 128)] and params.readout.shape == (128,)
    assert h.optimizer == "adam" and h.adversarial is None
    for rec in (h.loss, h.clean_loss, h.train_accuracy):
        assert isinstance(rec, np.ndarray) and rec.shape == (STEPS + 1,)
    np.testing.assert_array_equal(h.loss, h.clean_loss)        # plain: the same objective
    assert h.train_accuracy[-1] == 1.0                          # measured 1.0 (249/249)
    assert trained.accuracy(params, Xtr, ytr) == 1.0
    assert trained.accuracy(params, Xte, yte) >= 0.95           # measured 0.991 (107/108)
    assert h.loss[-1] < 0.01 * h.loss[0]                        # measured 1.27 → 4.4e-4
    assert np.all(np.diff(h.loss) <= 1e-5)                      # measured max rise −2.6e-6


def test_sgd_trains_too(digits):
    Xtr, ytr, Xte, yte = digits
    params, h = trained.train(jax.random.key(0), Xtr, ytr, WIDTHS, steps=STEPS, lr=0.05,
                              optimizer="sgd")
    assert h.optimizer == "sgd"
    assert h.loss[-1] < 0.05 * h.loss[0]                        # measured 1.27 → 0.011
    assert trained.accuracy(params, Xte, yte) >= 0.9            # measured 0.972


def test_same_key_same_network_other_key_other_network(digits, plain):
    Xtr, ytr, _, _ = digits
    again, h = trained.train(jax.random.key(0), Xtr, ytr, WIDTHS, steps=STEPS, lr=LR)
    assert _same(plain[0], again)
    np.testing.assert_array_equal(plain[1].loss, h.loss)
    other, _ = trained.train(jax.random.key(1), Xtr, ytr, WIDTHS, steps=STEPS, lr=LR)
    assert not _same(plain[0], other)


def test_euler_identity_holds_for_the_trained_net(digits, plain):
    _, _, Xte, _ = digits
    params = plain[0]
    f, g = gradients.value_and_input_grad(params, Xte)
    r = gradients.euler_residual(params, Xte)
    # the bound of tests/test_nets.py for random nets; measured max |r|/(‖∇f‖‖x‖) = 9.5e-8
    bound = 1e-4 * jnp.linalg.norm(g, axis=-1) * jnp.linalg.norm(Xte, axis=-1)
    assert bool(jnp.all(jnp.abs(r) <= bound)), float(jnp.max(jnp.abs(r) / bound))


def _verified_distances(params, X):
    """DeepFool's minimal ℓ2 distances on X, each claimed flip re-checked by nets.apply."""
    res = attacks.deepfool(params, X)
    flipped = np.asarray(res.flipped)
    f0, fa = np.asarray(nets.apply(params, X)), np.asarray(nets.apply(params, res.x_adv))
    assert np.all(np.sign(fa[flipped]) != np.sign(f0[flipped]))
    assert flipped.mean() == 1.0                                # measured: every test point
    return np.asarray(res.delta_norm)[flipped]


def test_adversarial_training_moves_the_boundary_away(digits, plain, adversarial):
    Xtr, _, Xte, yte = digits
    params, h = adversarial
    assert h.adversarial == {"eps": 2.0, "steps": 5, "step_size": 1.0}
    assert h.loss.shape == h.clean_loss.shape == (STEPS + 1,)
    assert np.all(h.loss >= h.clean_loss)                       # the attack raises the loss
    assert h.loss[-1] < 0.01 * h.loss[0]                        # measured 1.63 → 6.7e-3
    assert h.train_accuracy[-1] == 1.0                          # measured 1.0
    assert trained.accuracy(params, Xte, yte) >= 0.9            # measured 1.0
    d_plain = np.median(_verified_distances(plain[0], Xte))     # measured 2.744
    d_adv = np.median(_verified_distances(params, Xte))         # measured 3.860
    # measured +1.12 (keys 1, 2: 2.925 → 3.938, 2.672 → 3.886)
    assert d_adv > d_plain + 0.6, (d_plain, d_adv)


def test_weight_decay_shrinks_the_weights(digits, plain):
    Xtr, ytr, _, _ = digits
    decayed, h = trained.train(jax.random.key(0), Xtr, ytr, WIDTHS, steps=STEPS, lr=LR,
                               weight_decay=1e-2)
    # measured ‖θ‖² = 320 without decay, 9.2 with λ = 10⁻²
    assert _sqnorm(decayed) < 0.1 * _sqnorm(plain[0])
    p0 = trained.init_scaled(jax.random.key(0), WIDTHS)
    assert h.loss[0] == pytest.approx(plain[1].loss[0] + 0.5e-2 * _sqnorm(p0), rel=1e-5)


def test_init_scale_multiplies_the_initial_weights(digits, plain):
    Xtr, ytr, _, _ = digits
    base = nets.init_params(jax.random.key(0), WIDTHS)
    small = trained.init_scaled(jax.random.key(0), WIDTHS, 0.1)
    assert small.weight_scale is None and small.biases is None
    for a, b in zip(jax.tree.leaves(small), jax.tree.leaves(base)):
        np.testing.assert_allclose(a, 0.1 * b, rtol=1e-6)
    params, h = trained.train(jax.random.key(0), Xtr, ytr, WIDTHS, steps=STEPS, lr=LR,
                              init_scale=0.1)
    assert not _same(params, plain[0])
    # f scales as s^{L+1} = 10⁻²: the initial loss is log 2 = 0.693 (measured 0.696; 1.27 at s = 1)
    assert h.loss[0] == pytest.approx(np.log(2.0), abs=0.01)
    assert h.train_accuracy[-1] == 1.0


def test_divergence_is_an_error_not_nan(digits):
    Xtr, ytr, _, _ = digits
    with pytest.raises(ValueError, match="training diverged.*lower lr"):
        trained.train(jax.random.key(0), Xtr, ytr, WIDTHS, steps=STEPS, lr=1e30)


def _bad(kind, Xtr, ytr):
    """(args, kwargs) of train with one bad input."""
    kw = dict(steps=STEPS, lr=LR)
    args = [jax.random.key(0), Xtr, ytr, WIDTHS]
    where, value = BAD[kind][0], BAD[kind][1]
    if isinstance(where, int):
        args[where] = value(Xtr, ytr) if callable(value) else value
    else:
        kw[where] = value
    return args, kw


BAD = {  # kind: (argument index or keyword, bad value, expected message)
    "labels 0/1": (2, lambda X, y: (y + 1) / 2, "labels y must be ±1"),
    "y shape (n, 1)": (2, lambda X, y: y[:, None], r"y must have shape \(n,\)"),
    "y too short": (2, lambda X, y: y[:-1], r"y must have shape \(n,\)"),
    "X 1-D": (1, lambda X, y: X[:, 0], "X must have shape"),
    "X integer": (1, lambda X, y: jnp.round(X).astype(jnp.int32), "real floating-point"),
    "X NaN": (1, lambda X, y: X.at[0, 0].set(jnp.nan), "NaN or inf"),
    "X inf": (1, lambda X, y: X.at[3, 5].set(jnp.inf), "NaN or inf"),
    "widths[0] != d": (3, [32, 128], r"widths\[0\] must equal the input dimension d"),
    "zero width": (3, [64, 0], "positive integer"),
    "one width": (3, [64], "at least 2 entries"),
    "int seed": (0, 0, "PRNG key"),
    "steps 0": ("steps", 0, "steps must be a positive integer"),
    "steps float": ("steps", 2.5, "steps must be a positive integer"),
    "lr 0": ("lr", 0.0, "lr must be a finite number > 0"),
    "lr negative": ("lr", -1e-3, "lr must be a finite number > 0"),
    "lr inf": ("lr", float("inf"), "lr must be a finite number > 0"),
    "init_scale 0": ("init_scale", 0.0, "init_scale must be a finite number > 0"),
    "weight_decay negative": ("weight_decay", -1.0, "weight_decay must be a finite number ≥ 0"),
    "optimizer": ("optimizer", "rmsprop", "unknown optimizer 'rmsprop'"),
    "adversarial not a dict": ("adversarial", 2.0, "adversarial must be None or a dict"),
    "adversarial unknown key": ("adversarial", dict(eps=1.0, steps=5, radius=1.0), "got keys"),
    "adversarial no steps": ("adversarial", dict(eps=1.0), "got keys"),
    "adversarial eps 0": ("adversarial", dict(eps=0.0, steps=5), "adversarial eps must be"),
    "adversarial steps 0": ("adversarial", dict(eps=1.0, steps=0), "adversarial steps must be"),
    "adversarial step_size": ("adversarial", dict(eps=1.0, steps=5, step_size=-1.0),
                              "adversarial step_size must be"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_input_is_a_clear_error(digits, kind):
    Xtr, ytr, _, _ = digits
    args, kw = _bad(kind, Xtr, ytr)
    with pytest.raises(ValueError, match=BAD[kind][2]):
        trained.train(*args, **kw)


@pytest.mark.parametrize("kind", ["labels 0/1", "y too short", "X 1-D", "X integer", "X NaN"])
def test_accuracy_checks_its_input(digits, plain, kind):
    Xtr, ytr, _, _ = digits
    args, _ = _bad(kind, Xtr, ytr)
    with pytest.raises(ValueError, match=BAD[kind][2]):
        trained.accuracy(plain[0], args[1], args[2])


def test_accuracy_takes_one_network(digits):
    Xtr, ytr, _, _ = digits
    with pytest.raises(ValueError, match="stack of 2 networks"):
        trained.accuracy(nets.init_params(jax.random.key(0), WIDTHS, n=2), Xtr, ytr)
