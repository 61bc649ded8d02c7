"""What chapter 6's prose says the reader sees, asserted at the chapter's own CPU sizes.

As for the other chapters (tests/test_claims_ch5.py): the chapter's markdown quotes no
measured number, each test runs the package calls of one section with the sizes of the
chapter's ``runtime.sizes`` cell (``chapter_preset("ch6")``) and a fixed key that is not the
chapter's, and asserts what the prose says. Every bound is set from the spread of the whole
chapter pipeline over 10 seeds (``key = jax.random.key(seed)``, seeds 0–9, the chapter's
fold-ins), written beside it as
[min, max] over those seeds. The data (the digits and their split) are the same at every seed.

Cost: about the chapter's own run time, split over four tests so that the two test workers
share it.
"""

import math

import jax
import numpy as np
import pytest
from conftest import chapter_preset

from mini_adv import data, nets, realdata, regimes, trained

S = chapter_preset("ch6")
KEY = jax.random.key(61)
CLASSES = tuple(S["classes"])
WIDTHS = [S["d"], S["width"]]


@pytest.fixture(scope="module")
def digits():
    X, y = data.digits(CLASSES)
    Xt, yt = data.digits(CLASSES, split="test")
    assert X.shape == (S["n_train"], S["d"])  # the chapter's preset names the split's size
    return X, y, Xt, yt


def test_opening_and_what_carries_over(digits):
    """§ The question: the network classifies the test digits almost without error, every test
    digit is flipped (verified), the two attacks agree within a few per cent and the flow's
    flip is usually the shorter; the median flip is several units of ‖x‖/√d.
    § What carries over: Euler's identity to float32 rounding for both networks, linearised
    close to minimal for both, every gradient ray flips, random rays flip less often for the
    trained net; its |cos|√d and its minimal distance are several times the random net's."""
    X, y, Xt, yt = digits
    net, hist = trained.train(jax.random.fold_in(KEY, 1), X, y, WIDTHS, steps=S["steps"], lr=S["lr"])
    assert hist.train_accuracy[-1] == 1.0                     # [1, 1]
    assert trained.accuracy(net, Xt, yt) >= 0.95              # [0.982, 1]
    best = realdata.minimal_perturbation(net, Xt)
    assert best.flipped.all()                                 # [1, 1]
    f0, f1 = np.asarray(nets.apply(net, Xt)), np.asarray(nets.apply(net, np.asarray(Xt) + best.delta))
    assert np.all(f0 * f1 < 0)                                # every claimed flip, re-evaluated
    ratio = best.deepfool / best.flow
    assert 1.0 < np.median(ratio) < 1.1                       # median [1.040, 1.052]
    assert np.mean(best.method == "flow") >= 0.8              # [1, 1]
    assert 2.0 < np.median(best.distance) < 3.6               # "several units": [2.58, 2.86]
    assert np.max(best.distance / 8.0) < 0.8                  # ‖δ‖/‖x‖ max [0.60, 0.64]

    rnd = nets.init_params(jax.random.fold_in(KEY, 2), WIDTHS)
    s = {name: realdata.carry_over(jax.random.fold_in(KEY, 3), nt, Xt, n_rays=S["n_rays"],
                                   kappa=S["kappa"]).summary()
         for name, nt in [("random", rnd), ("trained", net)]}
    for name in s:
        assert s[name]["euler_max"] < 1e-6                     # [4.6e-8, 9.4e-8]
        assert abs(s[name]["linear_over_minimal"] - 1) < 0.05  # [0.978, 1.007]
        assert s[name]["p_flip_gradient"] == 1.0               # [1, 1]
    assert s["trained"]["p_flip_random"] < s["random"]["p_flip_random"]      # [0.12, 0.16] vs [0.24, 0.41]
    assert s["trained"]["cos_sqrt_d"] > 2 * s["random"]["cos_sqrt_d"]        # ratio [2.67, 4.67]
    assert s["trained"]["minimal_sqrt_d"] > 2.5 * s["random"]["minimal_sqrt_d"]  # ratio [3.09, 5.69]
    assert s["trained"]["cos_sqrt_d"] > 2.5 * realdata.SQRT_2_OVER_PI        # [2.53, 2.75] / 0.80
    # "far from concentrated on a few pixels ... of the order of a Gaussian vector's"
    spread = math.sqrt(S["d"]) * np.max(np.abs(best.delta), axis=1) / best.distance
    assert 1.5 < np.median(spread) < math.sqrt(2 * math.log(S["d"])) + 0.5  # [2.11, 2.50]
    assert spread.max() < 4.0                                               # [2.56, 3.01]

    # § What does not carry over: n·μ(X) far above 1/3; the class-mean direction flips every
    # test digit, above the minimal distance (every point above the diagonal) but of its order,
    # with a cosine to the minimal perturbation far from 0
    assert S["n_train"] * data.coherence(X) > 100 * regimes.COHERENCE_LIMIT  # 231
    cm = realdata.class_mean_flips(net, X, y, Xt)
    assert np.isfinite(cm.class_mean).all()                   # [1, 1]
    assert cm.ratio.min() > 1.0                               # [1.21, 1.38]
    assert cm.ratio.max() < 2.5                               # [1.64, 1.92]
    assert np.nanmedian(cm.cos_to_minimal) > 0.4              # [0.63, 0.70]


def test_subspace_sweep(digits):
    """§ Data on a subspace: off share 0 at D = d, rising with D towards (below) √(1 − d/D);
    the plain network's distance barely changes; the small initialisation keeps the share small
    at every D and lengthens the perturbation; weight decay lowers the share a little; every
    network classifies the test digits about equally well."""
    X, y, Xt, yt = digits
    sweeps = {}
    for name, kw in [("plain", {}), ("small", dict(init_scale=S["small_init"])),
                     ("decay", dict(weight_decay=S["weight_decay"]))]:
        sweeps[name] = realdata.subspace_sweep(jax.random.fold_in(KEY, 4), (X, y, Xt, yt), S["Ds"],
                                               width=S["sub_width"], steps=S["sub_steps"],
                                               lr=S["sub_lr"], optimizer="sgd", **kw)
    share = {k: np.array([p.median_off_share for p in v]) for k, v in sweeps.items()}
    dist = {k: np.array([p.median_distance for p in v]) for k, v in sweeps.items()}
    Ds = np.array(S["Ds"], float)
    assert S["Ds"][0] == S["d"] and np.all(share["plain"][:1] < 1e-5)   # [2.9e-7, 4.1e-7]
    assert np.all(np.diff(share["plain"]) > 0.03)              # rises: steps [0.07, 0.65]
    assert np.all(share["plain"][1:] < np.sqrt(1 - S["d"] / Ds[1:]))  # below the dashed line
    assert share["plain"][-1] > 0.5                            # [0.71, 0.72] at D = 1024
    assert dist["plain"].max() - dist["plain"].min() < 0.1     # barely changes: spread < 0.05
    assert np.all(share["small"][1:] < 0.5 * share["plain"][1:])  # [0.07, 0.09] vs [0.61, 0.72]
    assert np.all(dist["small"] > dist["plain"])               # longer: +[0.09, 0.11]
    assert np.all(share["decay"][1:] < share["plain"][1:])     # lower by [0.059, 0.078]
    assert np.all(share["decay"][1:] > 0.5 * share["plain"][1:])  # "a little"
    for pts in sweeps.values():
        assert all(p.test_accuracy >= 0.95 for p in pts)       # [0.963, 1]


def test_adversarial_training(digits):
    """§ Defences: the median minimal distance grows with the radius,
    lies above ‖δ‖ = ε at every radius, and the test accuracy stays at or above plain
    training's; in the slider the five digits' perturbations grow."""
    X, y, Xt, yt = digits
    pts = realdata.defence_sweep(jax.random.fold_in(KEY, 5), (X, y, Xt, yt), S["radii"],
                                 widths=WIDTHS, steps=S["steps"], lr=S["lr"], pgd_steps=S["pgd_steps"])
    med = np.array([p.median_distance for p in pts])
    assert np.all(np.diff(med) > 0)                            # monotone on all 10 seeds
    assert med[-1] - med[0] > 0.3                              # [0.49, 0.97]
    assert np.all(med > np.array(S["radii"]))                  # above the dashed line
    acc = np.array([p.test_accuracy for p in pts])
    assert np.all(acc >= acc[0] - 0.011) and acc.min() >= 0.95  # change [0, +0.019]
    for p in pts:
        assert np.isfinite(p.distance).all()                   # every test digit still flips
    show = np.arange(S["n_show"])
    frames = [np.mean(realdata.minimal_perturbation(p.net, Xt[show]).distance) for p in pts]
    assert frames[-1] > 1.1 * frames[0]                        # last/first [1.21, 1.47]


def test_training_started_at_the_robust_network():
    """§ Training started at the robust network: at the first checkpoint the flip distance along
    −y û has fallen from far above the robust radius 1/2 to near 1/√n, and the normalised margin
    has risen by a large factor."""
    run = realdata.robust_start(jax.random.fold_in(KEY, 6), d=S["robust_d"], n=S["robust_n"],
                                checkpoints=S["checkpoints"], steps_per=S["steps_per"])
    assert run.median[0] > 2 * 0.5                             # [1.46, 1.54]
    assert np.all(run.median[1:] < 0.55)                       # [0.34, 0.50]
    assert np.all(run.median[1:] < 1.7 * run.predicted)        # ratio [1.08, 1.59]
    assert np.all(run.normalized_margin[1:] > 10 * run.normalized_margin[0])  # 0.05 → [1.8, 3.0]


def test_cifar10_unit_is_about_robustbenchs_budget():
    """§ Units of practice: the printed ratio ε/(‖x‖/√d) is close to 1."""
    assert 0.8 < realdata.cifar10_scale(0.5).eps_in_units < 1.2  # 0.93 (a formula, no seed)
