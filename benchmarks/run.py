"""Speed benchmarks of mini_adv against the attack libraries, in one process, interleaved.

    python benchmarks/run.py --config reference --out benchmarks/results/2026-07-01.json

writes the JSON record and a Markdown report beside it (same name, ``.md``), and with
``--publish`` (the default for the reference configuration) copies both to
``benchmarks/results/latest.{json,md}``, which the book's Performance page includes.
``--config tiny`` runs every part at toy sizes in a few seconds (the unit test runs it);
peers that are not installed are reported as skipped. Install the peers with
``pip install -r benchmarks/requirements.txt`` (PyTorch CPU, foolbox, torchattacks, ART).

Parts (each a table in the report):

1. **fp32 GEMM peak**: the fastest of JAX, NumPy and PyTorch on square matrix products,
   measured in the same run (the yardstick for the GFLOP/s columns).
2. **Attacks** on the reference problem (d = 1000, a ReLU network with hidden widths
   500, 250 and a scalar output, 1024 inputs on the sphere of radius √d): mini_adv's
   DeepFool, one gradient evaluation + the exact first flip along the gradient ray
   (:func:`mini_adv.attacks.gradient_ray_flip`) and the gradient flow, against foolbox,
   torchattacks, ART and a hand-written PyTorch loop (all DeepFool; see ``peers.py``).
   Every method runs once per round, in an order rotated from round to round, so that
   drifts in the machine's load hit all of them alike, each after a short pause
   (:data:`COOLDOWN_S`, so that no library's spinning threads slow the next); the table has the median time,
   its ratio to mini_adv's DeepFool, the median ‖δ‖/‖x‖ over flipped inputs and the
   success rate, both re-checked in float64 (the network evaluated in float64 at the
   returned float32 points), and for mini_adv the achieved GFLOP/s (FLOP models below).
3. **Training**: :func:`mini_adv.margin.train_kernel` (normalised GD, one ``lax.scan``) at
   n = d = m = 1000 against the GEMM peak, and at d = 100 against the same step written
   as a PyTorch eager loop.
4. **Many networks**: :func:`mini_adv.parallel.map_networks` with ``vmap``, ``loop`` and
   ``auto`` (with each kernel's size threshold) on stacks of networks of several sizes,
   interleaved.
5. **Compilation**: the first call of every attack kernel on a depth-10 network (compile
   time, wall clock) and the number of compilations when only the values change.

FLOP models (multiply-adds × 2, the matrix products only; elementwise work is not counted):
see :func:`attack_flops` and :func:`train_flops`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import peers  # noqa: E402
from mini_adv import attacks, data, margin, nets, parallel, runtime  # noqa: E402

CONFIGS: dict[str, dict[str, Any]] = {
    "reference": dict(d=1000, hidden=(500, 250), batch=1024, rounds=9, gemm=(1024, 2048),
                      train_big=dict(n=1000, d=1000, m=1000, steps=20),
                      train_small=dict(n=100, d=100, m=100, steps=500),
                      many=[(64, 16, 32), (256, 64, 16), (1024, 256, 4)], compile_depth=10,
                      torchattacks_batch=128),
    "tiny": dict(d=32, hidden=(16, 8), batch=16, rounds=2, gemm=(128,),
                 train_big=dict(n=32, d=32, m=32, steps=5), train_small=dict(n=16, d=16, m=16, steps=20),
                 many=[(16, 4, 4)], compile_depth=3, torchattacks_batch=16),
}


# --------------------------------------------------------------------------------------
# FLOP models
# --------------------------------------------------------------------------------------

def _layer_sizes(widths: tuple[int, ...]) -> tuple[int, int, int]:
    """(d, h₁, T) with T = Σ_{ℓ≥2} h_{ℓ−1}h_ℓ + h_L: the multiply-adds a row of the layers after the first."""
    d, h1 = widths[0], widths[1]
    tail = sum(a * b for a, b in zip(widths[1:-1], widths[2:])) + widths[-1]
    return d, h1, tail


def attack_flops(method: str, widths: tuple[int, ...], B: int, iterations: int,
                 line_points: int = 0) -> float:
    """FLOPs (2 × multiply-adds of the matrix products) that a mini_adv attack kernel executes.

    With d = widths[0], h₁ = widths[1], T = Σ_{ℓ≥2} h_{ℓ−1}h_ℓ + h_L (the layers after the
    first, a row), every loop iteration working on the whole batch of B rows:

    * ``deepfool`` (``iterations`` = loop iterations = 1 + the most steps of any row):
      first layer B·d·h₁; per iteration the tail forward and backward 2·B·T and the chart
      direction B·h₁² (first-layer chart, h₁ ≤ d/2, plus d·h₁² once for K₁ᵀK₁) or 2·B·d·h₁;
      at the end the lift B·d·h₁ and one forward pass B·(d·h₁ + T).
    * ``flow``: per Euler iteration (``iterations`` = 1 + the most steps) the tail forward and
      backward 2·B·T, the direction B·h₁² and the new first layer B·h₁² (first-layer chart;
      else 2·B·d·h₁ for both), plus the two lifts, the search on the last segment (not
      counted) and one verifying forward pass.
    * ``gradient_ray``: first layer, tail forward and backward, ∇f = g₁K₁ᵀ and uK₁
      (B·(3·d·h₁ + 2·T)), then ``line_points`` tail evaluations a row (B·T each) and one
      confirming forward pass.

    Counted work is a lower bound of the executed work (elementwise operations and, for the
    flow, the final search are left out).
    """
    d, h1, T = _layer_sizes(widths)
    chart = B * h1 * h1 if 2 * h1 <= d else 2 * B * d * h1
    once = d * h1 * h1 if 2 * h1 <= d else 0
    forward = B * (d * h1 + T)
    if method == "deepfool":
        macs = B * d * h1 + iterations * (2 * B * T + chart) + once + B * d * h1 + forward
    elif method == "flow":   # per step also the new first layer, z₀ + wM (or wK₁)
        step = 2 * B * T + (2 * B * h1 * h1 if 2 * h1 <= d else 2 * B * d * h1)
        macs = B * d * h1 + iterations * step + once + 2 * B * d * h1 + forward
    elif method == "gradient_ray":
        macs = B * (3 * d * h1 + 2 * T) + line_points * B * T + forward
    else:
        raise ValueError(f"no FLOP model for {method!r}")
    return 2.0 * macs


def train_flops(n: int, d: int, m: int, steps: int) -> float:
    """FLOPs of :func:`mini_adv.margin.train_kernel` on a depth-2 network N(x) = vᵀσ(Kᵀx):

        per step: forward XK (2·n·d·m) and the weight gradient Xᵀ(q ⊙ …) (2·n·d·m),
        i.e. 4·n·d·m per step (+ one final evaluation, 2·n·d·m); the O(n·m + d·m)
        elementwise work is not counted.
    """
    return 4.0 * n * d * m * steps + 2.0 * n * d * m


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------

def _sync(x: Any) -> Any:
    return jax.block_until_ready(x)


COOLDOWN_S = 0.2
"""Pause before every timed call. The libraries' thread pools (XLA's, PyTorch's OpenMP, MKL's)
keep spinning for a while after a call returns; without the pause the next method, often
another library's, shares the cores with them (measured here: mini_adv's DeepFool 41 ms
alone, 45 ms right after the PyTorch loop, 41 ms after the loop and a 0.3 s pause)."""


def _timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of ``fn`` takes, after the cool-down pause."""
    time.sleep(COOLDOWN_S)
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _median_ms(ts: list[float]) -> float:
    return 1e3 * statistics.median(ts)


def f64_values(params: Any, X: np.ndarray) -> np.ndarray:
    """f(X) with the network evaluated in float64 (NumPy), the independent re-check."""
    h = np.asarray(X, np.float64)
    for k in params.kernels:
        h = np.maximum(h @ np.asarray(k, np.float64), 0.0)
    return h @ np.asarray(params.readout, np.float64)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dev = jax.devices()[0]
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "device": f"{dev.platform}:{dev.device_kind}",
            "local_devices": len(jax.local_devices()), "load_average": list(os.getloadavg())}


def versions() -> dict[str, str]:
    out = {"jax": jax.__version__}
    for mod in ("jaxlib", "flax", "numpy", "torch", "foolbox", "eagerpy", "torchattacks", "art"):
        ok, v = peers.available(mod)
        out[mod] = v if ok else "not installed"
    return out


# --------------------------------------------------------------------------------------
# 1. GEMM peak
# --------------------------------------------------------------------------------------

def gemm_peak(sizes: tuple[int, ...], repeats: int = 5) -> dict[str, Any]:
    """Best fp32 GFLOP/s of an n×n by n×n product (2n³ FLOPs) in JAX, NumPy and PyTorch."""
    rows = []
    for n in sizes:
        A = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
        Bm = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
        ja, jb = jnp.asarray(A), jnp.asarray(Bm)
        mm = jax.jit(jnp.matmul)
        libs: dict[str, Callable[[], Any]] = {"JAX": lambda: _sync(mm(ja, jb)), "NumPy": lambda: A @ Bm}
        if peers.available("torch")[0]:
            import torch
            ta, tb = torch.from_numpy(A), torch.from_numpy(Bm)
            libs["PyTorch"] = lambda: ta @ tb
        for name, fn in libs.items():
            fn()
            ts = [_timed(fn) for _ in range(repeats)]
            rows.append({"library": name, "n": n, "gflops": 2 * n**3 / min(ts) / 1e9})
    best = max(rows, key=lambda r: r["gflops"])
    return {"rows": rows, "peak_gflops": best["gflops"], "peak_by": f"{best['library']} n={best['n']}"}


def shape_ceiling(d: int, hidden: tuple[int, ...], B: int, repeats: int = 7) -> dict[str, Any]:
    """GFLOP/s of JAX's own matrix products at the shapes of one DeepFool iteration.

    The products of an iteration of :func:`mini_adv.attacks.deepfool_kernel` on the network
    d → hidden → 1 with B rows, bare (random matrices scaled by 1/√fan-in, eight iterations
    in one jitted loop): the tail forward (B, h_{ℓ−1})·(h_{ℓ−1}, h_ℓ) and backward
    (B, h_ℓ)·(h_ℓ, h_{ℓ−1}) for ℓ ≥ 2, and the chart's step (B, h₁)·(h₁, h₁) (or
    (B, h₁)·(h₁, d)·(d, h₁) when h₁ > d/2). XLA's dot is slower on these tall, thin
    products than on big square ones: this is the yardstick beside the peak, the speed of
    the products themselves without the kernel's other work.
    """
    rng = np.random.default_rng(2)
    widths = (d,) + tuple(hidden)
    h1 = widths[1]
    tail = [jnp.asarray(rng.standard_normal((a, b)).astype(np.float32) / math.sqrt(a))
            for a, b in zip(widths[1:-1], widths[2:])]
    if 2 * h1 <= d:
        chart = [jnp.asarray(rng.standard_normal((h1, h1)).astype(np.float32) / math.sqrt(h1))]
    else:
        K = rng.standard_normal((h1, d)).astype(np.float32) / math.sqrt(h1)
        chart = [jnp.asarray(K), jnp.asarray(np.ascontiguousarray(K.T))]
    tail_t = [jnp.asarray(np.ascontiguousarray(np.asarray(k).T)) for k in tail]
    A = jnp.asarray(rng.standard_normal((B, h1)).astype(np.float32))

    loops = 8         # iterations in one jitted loop, as in the kernels (no per-call overhead)

    @jax.jit
    def iterations(A, tail, tail_t, chart):
        def one(_, h):
            for k in tail:
                h = h @ k
            for k in reversed(tail_t):
                h = h @ k
            for k in chart:
                h = h @ k
            return h
        return jax.lax.fori_loop(0, loops, one, A)

    macs = loops * B * (2 * sum(k.size for k in tail) + sum(k.size for k in chart))
    fn = lambda: _sync(iterations(A, tail, tail_t, chart))  # noqa: E731
    fn()
    ts = [_timed(fn) for _ in range(repeats)]
    return {"gflops": 2 * macs / statistics.median(ts) / 1e9,
            "products": [list(k.shape) for k in tail] + [list(k.shape[::-1]) for k in reversed(tail)]
            + [list(k.shape) for k in chart]}


# --------------------------------------------------------------------------------------
# 2. attacks
# --------------------------------------------------------------------------------------

def attack_benchmark(cfg: dict[str, Any], peak: float, log: Callable[[str], None]) -> dict[str, Any]:
    widths = (cfg["d"],) + tuple(cfg["hidden"])
    params = nets.init_params(jax.random.key(0), widths)
    X = np.array(data.sphere(jax.random.key(1), cfg["batch"], cfg["d"]))   # writable, for torch
    Xj = jnp.asarray(X)
    f0 = np.asarray(nets.apply(params, Xj))
    budget = jnp.asarray(2.0 * float(np.max(np.linalg.norm(X, axis=-1))), jnp.float32)
    B = X.shape[0]

    def mini(name: str, kernel: Callable[[], Any]) -> Callable[[], tuple[np.ndarray, dict]]:
        def run():
            res = _sync(kernel())
            steps = np.asarray(res.steps)
            return np.asarray(res.x_adv), {"max_steps": int(steps.max()), "mean_steps": float(steps.mean())}
        return run

    methods: dict[str, dict[str, Any]] = {
        "mini_adv DeepFool": {"kind": "mini_adv", "flops": "deepfool",
                              "run": mini("deepfool", lambda: attacks.deepfool_kernel(params, Xj))},
        "mini_adv one step + exact first flip along ∇f": {
            "kind": "mini_adv", "flops": "gradient_ray",
            "run": mini("ray", lambda: attacks.gradient_ray_flip_kernel(params, Xj, budget))},
        "mini_adv gradient flow": {"kind": "mini_adv", "flops": "flow",
                                   "run": mini("flow", lambda: attacks.gradient_flow_kernel(params, Xj, budget))},
    }
    skipped = {}
    for name, (_, adapter, needs) in peers.PEERS.items():
        missing = [m for m in needs if not peers.available(m)[0]]
        if missing:
            skipped[name] = "not installed: " + ", ".join(missing)
            continue
        try:
            if name.startswith("torchattacks"):
                # torchattacks attacks one image at a time (its time is linear in the number
                # of inputs): timed on a subset, reported per the full batch
                nb = min(cfg["torchattacks_batch"], B)
                run = adapter(params, f0[:nb])
                methods[name] = {"kind": "peer", "subset": nb,
                                 "run": (lambda run=run, nb=nb: (run(X[:nb]), {}))}
            else:
                run = adapter(params, f0)
                methods[name] = {"kind": "peer", "run": (lambda run=run: (run(X), {}))}
        except Exception as exc:  # noqa: BLE001 - a peer that fails to build is reported
            skipped[name] = f"failed to build: {type(exc).__name__}: {exc}"[:300]

    # warm-up (compilation, first calls), then interleaved rounds in rotated order
    outputs: dict[str, tuple[np.ndarray, dict]] = {}
    first: dict[str, float] = {}
    for name, m in list(methods.items()):
        t = time.perf_counter()
        try:
            outputs[name] = m["run"]()
        except Exception as exc:  # noqa: BLE001
            skipped[name] = f"failed to run: {type(exc).__name__}: {exc}"[:300]
            del methods[name]
            continue
        first[name] = time.perf_counter() - t
        log(f"  warm-up {name}: {first[name]:.2f} s")
    names = list(methods)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(cfg["rounds"]):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            times[name].append(_timed(methods[name]["run"]))
        log(f"  round {r + 1}/{cfg['rounds']} done")

    rows = []
    for name in names:
        x_adv, info = outputs[name]
        nb = methods[name].get("subset", B)
        f_adv = f64_values(params, x_adv)
        f_cln = f64_values(params, X[:nb])
        flipped = f_cln * f_adv < 0
        rel = np.linalg.norm(x_adv - X[:nb], axis=-1) / np.linalg.norm(X[:nb], axis=-1)
        t_ms = _median_ms(times[name]) * (B / nb)        # per 1024 inputs for a subset
        row = {"method": name, "kind": methods[name]["kind"], "median_ms": t_ms,
               "min_ms": 1e3 * min(times[name]) * (B / nb), "rounds": len(times[name]),
               "inputs_timed": nb, "median_rel_delta": float(np.median(rel[flipped])) if flipped.any() else math.nan,
               "median_delta": float(np.median((rel * np.linalg.norm(X[:nb], axis=-1))[flipped]))
               if flipped.any() else math.nan,
               "success_rate_f64": float(flipped.mean()), "first_call_s": first[name], **info}
        if methods[name]["kind"] == "mini_adv":
            it = info["max_steps"] + 1
            line = max(info["max_steps"] - 1, 0) if methods[name]["flops"] == "gradient_ray" else 0
            fl = attack_flops(methods[name]["flops"], widths, B, it, line)
            row["gflops"] = fl / (t_ms / 1e3) / 1e9
            row["fraction_of_peak"] = row["gflops"] / peak
        rows.append(row)
    ref = next(r for r in rows if r["method"] == "mini_adv DeepFool")
    for r in rows:
        # the median over rounds of the ratio within each round (both timed minutes apart at
        # most, so drifts of the machine's speed cancel); times per the full batch
        scale = B / methods[r["method"]].get("subset", B)
        r["ratio_to_mini_adv"] = statistics.median(
            scale * a / b for a, b in zip(times[r["method"]], times["mini_adv DeepFool"]))
    fb = next((r for r in rows if r["method"].startswith("foolbox L2DeepFool (JAX")), None)
    agreement = (abs(fb["median_delta"] - ref["median_delta"]) / fb["median_delta"]) if fb else None
    return {"widths": list(widths), "batch": B, "rows": rows, "skipped": skipped,
            "deepfool_median_delta_rel_diff_vs_foolbox_jax": agreement}


# --------------------------------------------------------------------------------------
# 3. training
# --------------------------------------------------------------------------------------

def _train_case(n: int, d: int, m: int, steps: int, key: int = 0) -> tuple[Callable, np.ndarray, np.ndarray]:
    X, y = data.nearly_orthogonal(jax.random.key(key), n, d)
    p0 = margin.init_two_layer(jax.random.key(key + 1), d, m)
    lr = jnp.asarray(0.1, jnp.float32)

    def run():
        phi, rec = margin.train_kernel(p0, X, y, lr, lr, steps, "logistic", "ngd")
        return _sync(rec[2][-1])

    return run, np.array(X), np.array(y)   # writable copies, for torch


def training_benchmark(cfg: dict[str, Any], peak: float, rounds: int, log: Callable[[str], None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    big = cfg["train_big"]
    run, _, _ = _train_case(**big)
    run()
    ts = [_timed(run) for _ in range(max(rounds, 3))]
    fl = train_flops(big["n"], big["d"], big["m"], big["steps"])
    out["big"] = {**big, "median_ms": _median_ms(ts), "gflops": fl / statistics.median(ts) / 1e9,
                  "fraction_of_peak": fl / statistics.median(ts) / 1e9 / peak}
    log(f"  training n=d=m={big['d']}: {out['big']['gflops']:.1f} GFLOP/s")
    small = cfg["train_small"]
    run, X, y = _train_case(**small)
    run()
    jt, tt = [], []
    torch_run, threads = None, [None]
    if peers.available("torch")[0]:
        import torch
        torch_run = peers.torch_train_loop(X, y, small["m"], small["steps"], 0.1)
        torch_run()
        # a small eager loop is latency-bound: give PyTorch its best of 1 thread and the default
        threads = [1, torch.get_num_threads()]
    tt_by: dict[Any, list[float]] = {}
    for _ in range(max(2 * rounds, 3)):
        jt.append(_timed(run))
        if torch_run is not None:
            for k in threads:
                default = torch.get_num_threads()
                torch.set_num_threads(k)
                tt_by.setdefault(k, []).append(_timed(torch_run))
                torch.set_num_threads(default)
    if tt_by:
        best = min(tt_by, key=lambda k: statistics.median(tt_by[k]))
        tt = tt_by[best]
        out["torch_threads"] = best
    # the speed-up: the median over rounds of the ratio within each round (paired, so that
    # drifts of the machine's speed cancel)
    out["small"] = {**small, "mini_adv_ms": _median_ms(jt),
                    "torch_eager_ms": _median_ms(tt) if tt else None,
                    "speedup_vs_torch": statistics.median(a / b for a, b in zip(tt, jt)) if tt else None}
    return out


# --------------------------------------------------------------------------------------
# 4. many networks
# --------------------------------------------------------------------------------------

def _flow_one(p, X):
    return attacks.gradient_flow_kernel(p, X, 2.0 * jnp.max(jnp.linalg.norm(X, axis=-1)))


def _deepfool_one(p, X):
    return attacks.deepfool_kernel(p, X)


def many_networks_benchmark(cfg: dict[str, Any], rounds: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    rows = []
    # each kernel with its size threshold for "auto" (mini_adv.parallel): DeepFool takes a
    # few steps on every network, the flow's loop waits for the slowest network
    for name, kernel, threshold in (("DeepFool", _deepfool_one, parallel.VMAP_MAX_FLOPS_UNIFORM),
                                    ("gradient flow", _flow_one, parallel.VMAP_MAX_FLOPS)):
        for d, n, N in cfg["many"]:
            p = nets.init_params(jax.random.key(0), [d, max(d // 4, 1), max(d // 16, 1)], n=N)
            X = data.sphere(jax.random.key(1), N * n, d).reshape(N, n, d)
            t: dict[str, list[float]] = {}
            opts = {"vmap": dict(strategy="vmap"), "loop": dict(strategy="loop"),
                    "auto": dict(strategy="auto", vmap_max_flops=threshold)}
            for s in opts:   # warm-up: compilation
                _sync(parallel.map_networks(kernel, p, X, **opts[s]))
            for r in range(max(2 * rounds, 3)):
                order = ("vmap", "loop", "auto")[r % 3:] + ("vmap", "loop", "auto")[:r % 3]
                for s in order:
                    t.setdefault(s, []).append(_timed(
                        lambda s=s: _sync(parallel.map_networks(kernel, p, X, **opts[s]))))
            med = {s: statistics.median(v) for s, v in t.items()}
            pick = parallel.choose_strategy(p, X, vmap_max_flops=threshold)
            rows.append({"kernel": name, "d": d, "inputs": n, "networks": N,
                         "flops_per_network": parallel.network_flops(p, X),
                         "vmap_max_flops": threshold, "auto_picks": pick,
                         **{f"{s}_ms": 1e3 * v for s, v in med.items()},
                         # medians over rounds of the ratios within each round (paired)
                         "auto_over_loop": statistics.median(a / b for a, b in zip(t["auto"], t["loop"])),
                         "auto_over_best": statistics.median(
                             a / min(b, c) for a, b, c in zip(t["auto"], t["vmap"], t["loop"]))})
            log(f"  many networks {name} d={d}: auto/loop {rows[-1]['auto_over_loop']:.2f}")
    return rows


# --------------------------------------------------------------------------------------
# 5. compilation
# --------------------------------------------------------------------------------------

def compile_benchmark(depth: int) -> list[dict[str, Any]]:
    jax.config.update("jax_enable_compilation_cache", False)
    d, B = 48, 24
    p = nets.init_params(jax.random.key(0), [d] + [32] * depth)
    X = data.sphere(jax.random.key(1), B, d)
    U = data.sphere(jax.random.key(2), B, d, radius=1.0)
    T = jnp.asarray(20.0)
    kernels = {
        "deepfool_kernel": lambda p, X: attacks.deepfool_kernel(p, X),
        "gradient_flow_kernel": lambda p, X: attacks.gradient_flow_kernel(p, X, T),
        "ray_flip_kernel": lambda p, X: attacks.ray_flip_kernel(p, X, U, T),
        "gradient_ray_flip_kernel": lambda p, X: attacks.gradient_ray_flip_kernel(p, X, T),
        "gradient_step_kernel": lambda p, X: attacks.gradient_step_kernel(p, X, jnp.asarray(1.1), adaptive=True),
        "pgd_l2_kernel": lambda p, X: attacks.pgd_l2_kernel(p, X, jnp.asarray(1.0), 20, jnp.asarray(0.1)),
        "gradient_flow_path_kernel": lambda p, X: attacks.gradient_flow_path_kernel(p, X[0], 400),
    }
    p2 = nets.init_params(jax.random.key(5), [d] + [32] * depth)
    X2 = data.sphere(jax.random.key(6), B, d)
    _sync((p2, X2))
    rows = []
    for name, fn in kernels.items():
        with runtime.count_compilations() as c:
            t, cpu = time.perf_counter(), time.process_time()
            _sync(fn(p, X))
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        with runtime.count_compilations() as again:
            _sync(fn(p2, X2))
        rows.append({"kernel": name, "depth": depth, "first_call_s": wall, "first_call_cpu_s": cpu,
                     "compile_s": c.seconds, "recompiles_new_values": again.count})
    return rows


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------

def _fmt(v: Any, spec: str = ".3g") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return format(v, spec) if isinstance(v, (int, float)) else str(v)


def markdown(rec: dict[str, Any]) -> str:
    m, a, c = rec["machine"], rec["attacks"], rec["gemm"]["attack_shapes"]
    L = [f"*Written by `benchmarks/run.py` on {rec['date']}; do not edit by hand.*", "",
         f"- command: `{rec['command']}`",
         f"- machine: {m['cpu']}, {m['cores']} cores, {m['device']} ({m['local_devices']} local device(s)); "
         f"load average at start {m['load_average'][0]:.2f}, at end {rec['load_average_end'][0]:.2f}",
         "- versions: " + ", ".join(f"{k} {v}" for k, v in rec["versions"].items()),
         f"- fp32 GEMM peak (best of JAX, NumPy, PyTorch, square products): "
         f"**{rec['gemm']['peak_gflops']:.1f} GFLOP/s** ({rec['gemm']['peak_by']}; all: "
         + ", ".join(f"{r['library']} n={r['n']} {r['gflops']:.0f}" for r in rec["gemm"]["rows"]) + ")",
         f"- JAX's matrix products alone at the shapes of one DeepFool iteration "
         f"({a['batch']} rows times " + ", ".join("×".join(map(str, k)) for k in c["products"]) + "): "
         f"**{c['gflops']:.1f} GFLOP/s** ({c['gflops'] / rec['gemm']['peak_gflops']:.2f} of the peak): "
         "XLA's dot is slower on these tall, thin products than on square ones (the last column "
         "of the attack table divides by this speed, the one before by the peak)", "",
         f"### Attacks: d = {a['widths'][0]}, widths {a['widths']} + scalar output, {a['batch']} inputs", "",
         "| method | median time (ms) | × mini_adv DeepFool | median ‖δ‖/‖x‖ | success (float64) "
         "| GFLOP/s (÷ peak; ÷ JAX's products) |",
         "|---|---:|---:|---:|---:|---:|"]
    for r in a["rows"]:
        gf = (f"{r['gflops']:.1f} ({r['fraction_of_peak']:.2f}; {r['gflops'] / c['gflops']:.2f})"
              if "gflops" in r else "–")
        note = f" (timed on {r['inputs_timed']} inputs, scaled)" if r["inputs_timed"] != a["batch"] else ""
        L.append(f"| {r['method']}{note} | {r['median_ms']:.1f} | {r['ratio_to_mini_adv']:.3g} | "
                 f"{_fmt(r['median_rel_delta'], '.5g')} | {r['success_rate_f64']:.3f} | {gf} |")
    for name, why in a["skipped"].items():
        L.append(f"| {name} | skipped: {why} | | | | |")
    if a["deepfool_median_delta_rel_diff_vs_foolbox_jax"] is not None:
        L += ["", f"Median ‖δ‖ of mini_adv's DeepFool and foolbox's (JAX) differ by "
                  f"{a['deepfool_median_delta_rel_diff_vs_foolbox_jax']:.2e} (relative)."]
    t = rec["training"]
    b, s = t["big"], t["small"]
    L += ["", "### Training (normalised GD, logistic loss, one `lax.scan`)", "",
          "| case | time | GFLOP/s (fraction of peak) | PyTorch eager loop | speed-up |", "|---|---:|---:|---:|---:|",
          f"| n = {b['n']}, d = {b['d']}, m = {b['m']}, {b['steps']} steps | {b['median_ms']:.1f} ms | "
          f"{b['gflops']:.1f} ({b['fraction_of_peak']:.2f}) | – | – |",
          f"| n = {s['n']}, d = {s['d']}, m = {s['m']}, {s['steps']} steps | {s['mini_adv_ms']:.1f} ms | – | "
          f"{_fmt(s['torch_eager_ms'], '.1f')} ms | {_fmt(s['speedup_vs_torch'], '.1f')}× |"]
    L += ["", "### Many networks (`mini_adv.parallel.map_networks`)", "",
          "| kernel | widths | inputs × networks | vmap (ms) | loop (ms) | auto (ms) | auto picks | auto / loop | auto / best |",
          "|---|---|---:|---:|---:|---:|---|---:|---:|"]
    for r in rec["many_networks"]:
        L.append(f"| {r['kernel']} | [{r['d']}, {max(r['d'] // 4, 1)}, {max(r['d'] // 16, 1)}] | "
                 f"{r['inputs']} × {r['networks']} | {r['vmap_ms']:.1f} | {r['loop_ms']:.1f} | "
                 f"{r['auto_ms']:.1f} | {r['auto_picks']} | {r['auto_over_loop']:.2f} | "
                 f"{r['auto_over_best']:.2f} |")
    L += ["", f"### Compilation (depth {rec['compile'][0]['depth']}, persistent cache off)", "",
          "First call of each kernel (tracing, compiling and one run) on a network of depth "
          f"{rec['compile'][0]['depth']}; the process's CPU time beside the wall time (XLA compiles "
          "on all cores; on a loaded machine the wall time is stretched by waiting for them).", "",
          "| kernel | first call (s) | its CPU time (s) | of which compiling (s) | compilations when only values change |",
          "|---|---:|---:|---:|---:|"]
    for r in rec["compile"]:
        L.append(f"| `{r['kernel']}` | {r['first_call_s']:.2f} | {r['first_call_cpu_s']:.2f} | "
                 f"{r['compile_s']:.2f} | {r['recompiles_new_values']} |")
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", choices=sorted(CONFIGS), default="reference")
    ap.add_argument("--out", type=Path, required=True, help="the JSON file to write (the .md goes beside it)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default: per config)")
    ap.add_argument("--publish", action=argparse.BooleanOptionalAction, default=None,
                    help="also write benchmarks/results/latest.{json,md} (default: on for reference)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--render-only", action="store_true",
                    help="measure nothing: rewrite the .md of the existing record --out (and latest.md "
                         "with --publish) after a change of the report's layout")
    args = ap.parse_args(argv)
    if args.render_only:
        rec = json.loads(args.out.read_text())
        md = markdown(rec)
        args.out.with_suffix(".md").write_text(md)
        if args.publish:
            (HERE / "results" / "latest.md").write_text(md)
        return rec
    cfg = dict(CONFIGS[args.config])
    if args.rounds:
        cfg["rounds"] = args.rounds
    log = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    command = "python " + " ".join([os.path.relpath(__file__)] + (argv if argv is not None else sys.argv[1:]))
    rec: dict[str, Any] = {"config": args.config, "command": command,
                           "date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
                           "machine": machine(), "versions": versions()}
    try:
        rec["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                                    text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001
        rec["git"] = "?"
    log("GEMM peak ...")
    rec["gemm"] = gemm_peak(cfg["gemm"])
    peak = rec["gemm"]["peak_gflops"]
    log(f"  {peak:.1f} GFLOP/s ({rec['gemm']['peak_by']})")
    rec["gemm"]["attack_shapes"] = shape_ceiling(cfg["d"], cfg["hidden"], cfg["batch"])
    log(f"  JAX at the shapes of a DeepFool iteration: {rec['gemm']['attack_shapes']['gflops']:.1f} GFLOP/s")
    log("attacks ...")
    rec["attacks"] = attack_benchmark(cfg, peak, log)
    log("training ...")
    rec["training"] = training_benchmark(cfg, peak, cfg["rounds"], log)
    log("many networks ...")
    rec["many_networks"] = many_networks_benchmark(cfg, cfg["rounds"], log)
    log("compilation ...")
    rec["compile"] = compile_benchmark(cfg["compile_depth"])
    rec["load_average_end"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rec, indent=1, default=float))
    md = markdown(rec)
    args.out.with_suffix(".md").write_text(md)
    publish = args.publish if args.publish is not None else args.config == "reference"
    if publish:
        latest = HERE / "results" / "latest"
        shutil.copyfile(args.out, latest.with_suffix(".json"))
        latest.with_suffix(".md").write_text(md)
    log(md)
    return rec


if __name__ == "__main__":
    main()
