"""The peers of the benchmark: the same binary network and the same DeepFool, in other libraries.

Every peer gets the network as a two-logit classifier (0, f(x)) (the predicted class is
1 where f > 0), so that its multi-class DeepFool is binary DeepFool on f: with two classes
the step is (|f|/‖∇f‖)·∇f/‖∇f‖ towards the boundary, as in :func:`mini_adv.attacks.deepfool`.
Each adapter builds its model once (not timed) and returns ``run(X) -> x_adv`` (NumPy
float32), the whole attack on the batch.

Settings: 50 steps and overshoot 0.02 everywhere (foolbox and torchattacks' defaults;
ART's ``epsilon`` is its overshoot, set to 0.02), ART and foolbox batched over all inputs.

Workarounds (documented, smallest that make a peer run the attack as intended):

* torchattacks 3.5.1 DeepFool clamps every iterate to the image box [0, 1]
  (``torch.clamp(adv_image, min=0, max=1)``). Inputs on the sphere of radius √d have
  coordinates of both signs and |x_i| up to about 4, so the clamp would rewrite the inputs
  themselves. The adapter runs the attack with the module's ``torch`` replaced by a proxy
  whose ``clamp`` returns its argument (the problem has no box); everything else is the
  library's code.
* foolbox needs bounds: ``(-1e4, 1e4)``, which no input or iterate comes near.
* ART's DeepFool scales its steps by the clip range when ``clip_values`` is set; it is
  left unset (no clipping, steps unscaled), as ART's own warning describes.
"""

from __future__ import annotations

import importlib
import math
import types
from typing import Any, Callable

import numpy as np

STEPS, OVERSHOOT = 50, 0.02
BOUNDS = (-1e4, 1e4)


def available(module: str) -> tuple[bool, str]:
    """(importable, version or the reason it is not)."""
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure means "skipped"
        return False, f"not importable ({type(exc).__name__}: {exc})"[:200]
    return True, getattr(mod, "__version__", "?")


def numpy_weights(params: Any) -> tuple[list[np.ndarray], np.ndarray]:
    return [np.array(k, np.float32) for k in params.kernels], np.array(params.readout, np.float32)


def torch_net(params: Any) -> Any:
    """f as a ``torch.nn.Module`` returning the two logits (0, f(x)), float32, ReLU, no bias."""
    import torch

    kernels, readout = numpy_weights(params)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.kernels = torch.nn.ParameterList(
                [torch.nn.Parameter(torch.from_numpy(k), requires_grad=False) for k in kernels])
            self.readout = torch.nn.Parameter(torch.from_numpy(readout), requires_grad=False)

        def f(self, x):
            h = x
            for k in self.kernels:
                h = torch.relu(h @ k)
            return h @ self.readout

        def forward(self, x):
            f = self.f(x)
            return torch.stack([torch.zeros_like(f), f], dim=-1)

    return Net().eval()


def labels_of(f: np.ndarray) -> np.ndarray:
    """The class of the two-logit model (0, f): 1 where f > 0."""
    return (f > 0).astype(np.int64)


def foolbox_jax(params: Any, f0: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """foolbox 3 L2DeepFoolAttack on a jitted JAX model (eagerpy's JAX backend)."""
    import foolbox as fb
    import jax
    import jax.numpy as jnp

    from mini_adv.nets import apply

    @jax.jit
    def model(x):
        f = apply(params, x)
        return jnp.stack([jnp.zeros_like(f), f], axis=-1)

    fmodel = fb.JAXModel(model, bounds=BOUNDS)
    attack = fb.attacks.L2DeepFoolAttack(steps=STEPS, candidates=2, overshoot=OVERSHOOT)
    labels = jnp.asarray(labels_of(f0))

    def run(X: np.ndarray) -> np.ndarray:
        x = jnp.asarray(X)
        _, adv, _ = attack(fmodel, x, labels, epsilons=None)
        return np.asarray(jax.block_until_ready(adv))

    return run


def foolbox_torch(params: Any, f0: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """foolbox 3 L2DeepFoolAttack on a PyTorch model."""
    import foolbox as fb
    import torch

    fmodel = fb.PyTorchModel(torch_net(params), bounds=BOUNDS, device="cpu")
    attack = fb.attacks.L2DeepFoolAttack(steps=STEPS, candidates=2, overshoot=OVERSHOOT)
    labels = torch.from_numpy(labels_of(f0))

    def run(X: np.ndarray) -> np.ndarray:
        _, adv, _ = attack(fmodel, torch.from_numpy(X), labels, epsilons=None)
        return adv.detach().numpy()

    return run


def torchattacks_deepfool(params: Any, f0: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """torchattacks 3.5.1 DeepFool (one image at a time, as the library does it), without
    its [0, 1] clamp (see the module docstring)."""
    import torch
    import torchattacks
    from torchattacks.attacks import deepfool as module

    no_clamp = types.SimpleNamespace(**{n: getattr(torch, n) for n in dir(torch) if not n.startswith("__")})
    no_clamp.clamp = lambda x, min=None, max=None: x  # noqa: A002 - torch's keyword names
    module.torch = no_clamp
    attack = torchattacks.DeepFool(torch_net(params), steps=STEPS, overshoot=OVERSHOOT)
    labels = torch.from_numpy(labels_of(f0))

    def run(X: np.ndarray) -> np.ndarray:
        return attack(torch.from_numpy(X), labels).detach().numpy()

    return run


def art_deepfool(params: Any, f0: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """adversarial-robustness-toolbox DeepFool on a PyTorchClassifier, batched."""
    import logging

    import torch
    from art.attacks.evasion import DeepFool
    from art.estimators.classification import PyTorchClassifier

    logging.getLogger("art").setLevel(logging.ERROR)   # its no-clip_values warning, every call
    d = params.widths[0]
    clf = PyTorchClassifier(model=torch_net(params), loss=torch.nn.CrossEntropyLoss(),
                            input_shape=(d,), nb_classes=2, clip_values=None, device_type="cpu")

    def run(X: np.ndarray) -> np.ndarray:
        attack = DeepFool(clf, max_iter=STEPS, epsilon=OVERSHOOT, nb_grads=2,
                          batch_size=X.shape[0], verbose=False)
        return attack.generate(X).astype(np.float32)

    return run


def torch_loop(params: Any, f0: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A hand-written batched DeepFool in PyTorch (eager), foolbox's update:

        r_k = −sign(f₀)(|f(x_k)|/‖∇f(x_k)‖ + 10⁻⁴) ∇f/‖∇f‖,   x_{k+1} = x₀ + 1.02 Σ r_k,

    on every row that has not flipped yet, until none is left or 50 steps."""
    import torch

    net = torch_net(params)
    s0 = torch.from_numpy(np.sign(f0).astype(np.float32))

    def run(X: np.ndarray) -> np.ndarray:
        x0 = torch.from_numpy(X)
        r_tot = torch.zeros_like(x0)
        x = x0.clone()
        active = torch.ones(x0.shape[0], dtype=torch.bool)
        for _ in range(STEPS + 1):
            x.requires_grad_(True)
            f = net.f(x)
            (g,) = torch.autograd.grad(f.sum(), x)
            x = x.detach()
            with torch.no_grad():
                active &= f.detach() * s0 > 0
                if not bool(active.any()):
                    break
                gn = g.norm(dim=-1).clamp_min(1e-12)
                r = (-s0 * (f.detach().abs() / gn + 1e-4) / gn)[:, None] * g
                r_tot += torch.where(active[:, None], r, torch.zeros_like(r))
                x = torch.where(active[:, None], x0 + (1 + OVERSHOOT) * r_tot, x)
        return x.detach().numpy()

    return run


PEERS: dict[str, tuple[str, Callable, tuple[str, ...]]] = {
    "foolbox L2DeepFool (JAX, jitted model)": ("DeepFool", foolbox_jax, ("foolbox", "eagerpy")),
    "foolbox L2DeepFool (PyTorch model)": ("DeepFool", foolbox_torch, ("foolbox", "torch")),
    "torchattacks DeepFool": ("DeepFool", torchattacks_deepfool, ("torchattacks", "torch")),
    "ART DeepFool": ("DeepFool", art_deepfool, ("art", "torch")),
    "PyTorch loop (hand-written, batched)": ("DeepFool", torch_loop, ("torch",)),
}
"""name → (algorithm, adapter, modules it needs)."""


def torch_train_loop(X: np.ndarray, y: np.ndarray, width: int, steps: int, lr: float,
                     seed: int = 0) -> Callable[[], float]:
    """The normalised-GD step of :func:`mini_adv.margin.train` (logistic loss, θ = e^s φ,
    ‖φ‖ = 1, constant step), written as a PyTorch eager loop: one forward, one backward
    and the update per step. Returns ``run() -> final log‖θ‖`` (so the work is not dead)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    n, d = X.shape
    K0 = torch.randn(d, width, generator=g) * (1e-2 / math.sqrt(d))
    v0 = torch.randn(width, generator=g) * 1e-2
    R = float(torch.sqrt((Xt * Xt).sum(-1).max()))

    def run() -> float:
        K, v = K0.clone(), v0.clone()
        norm = torch.sqrt((K * K).sum() + (v * v).sum())
        K, v, s = (K / norm).requires_grad_(True), (v / norm).requires_grad_(True), torch.log(norm)
        for _ in range(steps):
            um = yt * (torch.relu(Xt @ K) @ v)
            u = torch.exp(2 * s) * um.detach()
            log_d = -torch.nn.functional.softplus(u)
            z = -u          # log softplus(z), with its tail z − e^z/2 below z = −30 (as mini_adv)
            tail = z < -30
            log_l = torch.where(tail, z - 0.5 * torch.exp(torch.where(tail, z, 0.0)),
                                torch.log(torch.nn.functional.softplus(torch.where(tail, 0.0, z))))
            q = torch.exp(log_d - torch.logsumexp(log_l, 0))
            gK, gv = torch.autograd.grad(um, (K, v), grad_outputs=q)
            with torch.no_grad():
                K2, v2 = K + (lr / R) * gK, v + (lr / R) * gv
                nn = torch.sqrt((K2 * K2).sum() + (v2 * v2).sum())
                K, v, s = (K2 / nn).requires_grad_(True), (v2 / nn).requires_grad_(True), s + torch.log(nn)
        return float(s)

    return run
