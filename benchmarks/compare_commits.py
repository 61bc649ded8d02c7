"""Paired speed comparison of mini_adv's DeepFool and gradient flow between two source trees.

    git archive 8a775c5 mini_adv | tar -x -C /tmp/base     # or: git worktree add /tmp/base 8a775c5
    python benchmarks/compare_commits.py /tmp/base .        # OLD tree, then NEW tree

Times :func:`mini_adv.attacks.deepfool_kernel` and :func:`mini_adv.attacks.gradient_flow_kernel`
on the reference problem of ``benchmarks/run.py`` (d = 1000, a ReLU network with hidden
widths 500 and 250 and a scalar output, ``jax.random.key(0)``; 1024 inputs on the sphere of
radius √d, ``jax.random.key(1)``; the flow's budget 2·max‖x‖). Each round runs one fresh
subprocess per tree, with that tree first on ``PYTHONPATH``, in an order that alternates
from round to round, so that drifts in the machine's load hit both trees alike; each
subprocess compiles, warms up, and reports the median of ``--repeats`` timed calls per method.
The report is, per method, the median over rounds of the paired ratio NEW/OLD (and its
range), besides the median times. A ratio above 1 means NEW is slower.

Options: ``--rounds`` (default 7), ``--repeats`` (default 5), ``--methods`` (default
``deepfool flow``), ``--batch`` (default 1024), ``--python`` (the interpreter of the
subprocesses, default this one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

WORKER = r"""
import json, sys, time
import jax, jax.numpy as jnp
from mini_adv import attacks, data, nets
methods, batch, repeats = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
assert attacks.__file__.startswith(sys.argv[4]), attacks.__file__
params = nets.init_params(jax.random.key(0), (1000, 500, 250))
X = data.sphere(jax.random.key(1), batch, 1000)
budget = 2.0 * jnp.max(jnp.linalg.norm(X, axis=-1))
calls = {"deepfool": lambda: attacks.deepfool_kernel(params, X),
         "flow": lambda: attacks.gradient_flow_kernel(params, X, budget)}
out = {}
for m in methods:
    jax.block_until_ready(calls[m]())                 # compile
    jax.block_until_ready(calls[m]())                 # warm up
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(calls[m]())
        ts.append(time.perf_counter() - t)
    out[m] = sorted(ts)[len(ts) // 2]
print("RESULT " + json.dumps(out))
"""


def run_tree(python: str, tree: Path, methods: list[str], batch: int, repeats: int) -> dict:
    """Median seconds per method, measured in a fresh subprocess importing ``tree``'s mini_adv."""
    env = dict(os.environ, PYTHONPATH=str(tree), JAX_ENABLE_COMPILATION_CACHE="false")
    proc = subprocess.run([python, "-c", WORKER, ",".join(methods), str(batch), str(repeats),
                           str(tree)], env=env, cwd=str(tree), capture_output=True, text=True,
                          check=False)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"worker failed for {tree}:\n{proc.stderr[-2000:]}")
    return json.loads(line[-1][len("RESULT "):])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path, help="the source tree to compare against")
    ap.add_argument("new", type=Path, help="the source tree under test")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--methods", nargs="+", default=["deepfool", "flow"],
                    choices=["deepfool", "flow"])
    ap.add_argument("--python", default=sys.executable)
    a = ap.parse_args(argv)
    trees = {"old": a.old.resolve(), "new": a.new.resolve()}
    times: dict[str, dict[str, list[float]]] = {k: {m: [] for m in a.methods} for k in trees}
    for r in range(a.rounds):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for k in order:
            for m, t in run_tree(a.python, trees[k], a.methods, a.batch, a.repeats).items():
                times[k][m].append(t)
        print(f"round {r + 1}/{a.rounds}: " + ", ".join(
            f"{m} old {times['old'][m][-1] * 1e3:.1f} ms new {times['new'][m][-1] * 1e3:.1f} ms"
            for m in a.methods), flush=True)
    report = {}
    for m in a.methods:
        ratios = [n / o for n, o in zip(times["new"][m], times["old"][m])]
        report[m] = {"old_ms": statistics.median(times["old"][m]) * 1e3,
                     "new_ms": statistics.median(times["new"][m]) * 1e3,
                     "median_ratio": statistics.median(ratios),
                     "min_ratio": min(ratios), "max_ratio": max(ratios)}
        print(f"{m:9s} old {report[m]['old_ms']:8.1f} ms  new {report[m]['new_ms']:8.1f} ms  "
              f"median paired ratio new/old {report[m]['median_ratio']:.3f} "
              f"(range {report[m]['min_ratio']:.3f}–{report[m]['max_ratio']:.3f}, "
              f"{a.rounds} rounds)")
    return report


if __name__ == "__main__":
    main()
