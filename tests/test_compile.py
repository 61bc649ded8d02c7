"""Compilation: no recompiles when only values change (counted, not timed), the cache.

Compile *times* are not asserted here: a timed unit test fails by machine load. The first
call of every attack kernel at depth 10 is measured by ``benchmarks/run.py`` ("Compilation"
table, persistent cache off)."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import pytest

from mini_adv import attacks, data, margin, nets, parallel, runtime

D, B = 41, 23          # shapes no other test uses, so that the first call compiles here


def kernels(depth: int):
    p = nets.init_params(jax.random.key(depth), [D] + [32] * depth)
    return p, {
        "deepfool": lambda p, X, v: attacks.deepfool_kernel(p, X, overshoot=0.02),
        "flow": lambda p, X, v: attacks.gradient_flow_kernel(p, X, v),
        "ray": lambda p, X, v: attacks.ray_flip_kernel(p, X, X[::-1], v),
        "gradient_ray": lambda p, X, v: attacks.gradient_ray_flip_kernel(p, X, v),
        "step": lambda p, X, v: attacks.gradient_step_kernel(p, X, v / 10, adaptive=True),
        "step_fixed": lambda p, X, v: attacks.gradient_step_kernel(p, X, v / 50, adaptive=False),
        "pgd": lambda p, X, v: attacks.pgd_l2_kernel(p, X, v / 10, 10, v / 100),
        "flow_path": lambda p, X, v: attacks.gradient_flow_path_kernel(p, X[0], 30, v / 100),
    }


KERNELS = ["deepfool", "flow", "ray", "gradient_ray", "step", "step_fixed", "pgd", "flow_path"]


def test_every_attack_kernel_is_covered():
    """Every ``*_kernel`` of mini_adv.attacks (defined in its submodules) is in the
    recompilation test below."""
    def defined_here(f):
        module = getattr(getattr(f, "__wrapped__", f), "__module__", None) or ""
        return module.startswith(attacks.__name__ + ".")
    names = {n for n in dir(attacks) if n.endswith("_kernel") and defined_here(getattr(attacks, n))}
    assert names == {"deepfool_kernel", "gradient_flow_kernel", "ray_flip_kernel",
                     "gradient_ray_flip_kernel", "gradient_step_kernel", "pgd_l2_kernel",
                     "gradient_flow_path_kernel"}, names


@pytest.fixture(autouse=True)
def no_persistent_cache():
    """Compile for real (a program loaded from the persistent cache is not compiled)."""
    old = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    yield
    jax.config.update("jax_enable_compilation_cache", old)


def test_counting_sees_a_compilation():
    f = jax.jit(lambda x: jnp.sin(x) * 3)
    with runtime.count_compilations() as c:
        jax.block_until_ready(f(jnp.ones(17)))
    assert c.count >= 1 and c.seconds > 0
    x2 = jax.block_until_ready(jnp.ones(17) * 2)      # (an eager op compiles too)
    with runtime.count_compilations() as c:
        jax.block_until_ready(f(x2))
    assert c.count == 0


@pytest.mark.parametrize("name", KERNELS)
def test_no_recompilation_when_only_values_change(name):
    """New weights, new inputs and new budgets with the same shapes reuse the compiled kernel."""
    p, ks = kernels(2)
    X = data.sphere(jax.random.key(1), B, D)
    jax.block_until_ready(ks[name](p, X, jnp.asarray(12.0)))
    p2 = nets.init_params(jax.random.key(7), [D, 32, 32])
    X2, v2 = data.sphere(jax.random.key(8), B, D), jnp.asarray(9.5)
    jax.block_until_ready((p2, X2, v2))
    with runtime.count_compilations() as c:
        jax.block_until_ready(ks[name](p2, X2, v2))
    assert c.count == 0


PUBLIC = {   # every public attack, called twice with the same shapes and new values
    "gradient_step c": lambda p, X, v: attacks.gradient_step(p, X, c=1.0 + v),
    "gradient_step s": lambda p, X, v: attacks.gradient_step(p, X, s=v),
    "gradient_flow": lambda p, X, v: attacks.gradient_flow(p, X, max_distance=10 * v,
                                                           step_fraction=0.1 + v / 10,
                                                           min_step=v / 100, rtol=v / 1e5),
    "gradient_flow_path": lambda p, X, v: attacks.gradient_flow_path(p, X[0], n_steps=20,
                                                                     step_fraction=0.1 + v / 10),
    "deepfool": lambda p, X, v: attacks.deepfool(p, X, overshoot=v / 10),
    "pgd_l2": lambda p, X, v: attacks.pgd_l2(p, X, eps=v, steps=5, step_size=v / 4),
    "ray_flip_distance": lambda p, X, v: attacks.ray_flip_distance(p, X, X[::-1], max_distance=10 * v,
                                                                   rtol=v / 1e5),
    "gradient_ray_flip": lambda p, X, v: attacks.gradient_ray_flip(p, X, max_distance=10 * v,
                                                                   rtol=v / 1e5),
}


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_attacks_do_not_recompile_for_new_values(name):
    """The public functions (input checks, defaults, the kernel) with new weights, inputs and
    new values of every numeric setting that is not a size (budgets, step sizes,
    tolerances): nothing compiles again."""
    p, _ = kernels(2)
    X = data.sphere(jax.random.key(1), B, D)
    jax.block_until_ready(PUBLIC[name](p, X, 0.3))
    p2 = nets.init_params(jax.random.key(7), [D, 32, 32])
    X2 = data.sphere(jax.random.key(8), B, D)
    jax.block_until_ready((p2, X2))
    with runtime.count_compilations() as c:
        jax.block_until_ready(PUBLIC[name](p2, X2, 0.7))
    assert c.count == 0


def test_no_recompilation_of_training_and_of_many_networks():
    X, y = data.nearly_orthogonal(jax.random.key(0), 12, D)
    p0 = margin.init_two_layer(jax.random.key(1), D, 16)
    lr = jnp.asarray(0.1)
    jax.block_until_ready(margin.train_kernel(p0, X, y, lr, lr, 7))
    X2, y2 = data.nearly_orthogonal(jax.random.key(2), 12, D)
    p2 = margin.init_two_layer(jax.random.key(3), D, 16)
    stack = nets.init_params(jax.random.key(4), [D, 16], n=3)
    Xs = data.sphere(jax.random.key(5), 3 * 5, D).reshape(3, 5, D)
    kern = attacks.deepfool_kernel
    for s in ("vmap", "loop", "auto"):
        jax.block_until_ready(parallel.map_networks(kern, stack, Xs, strategy=s))
    stack2 = nets.init_params(jax.random.key(6), [D, 16], n=3)
    Xs2, lr2 = Xs * 1.5, jnp.asarray(0.05)
    jax.block_until_ready((X2, y2, p2, stack2, Xs2, lr2))
    with runtime.count_compilations() as c:
        jax.block_until_ready(margin.train_kernel(p2, X2, y2, lr2, lr2, 7))
        for s in ("vmap", "loop", "auto"):
            jax.block_until_ready(parallel.map_networks(kern, stack2, Xs2, strategy=s))
    assert c.count == 0


def test_persistent_cache_is_written_and_can_be_turned_off(tmp_path):
    script = textwrap.dedent("""
        import sys, jax, jax.numpy as jnp
        from mini_adv import runtime, attacks, nets, data
        print(runtime.enable_compilation_cache(sys.argv[1], min_compile_secs=0.0))
        p = nets.init_params(jax.random.key(0), [24, 12])
        jax.block_until_ready(attacks.deepfool_kernel(p, data.sphere(jax.random.key(1), 5, 24)))
    """)
    cache = tmp_path / "jax-cache"
    env = {k: v for k, v in os.environ.items() if k != "MINI_ADV_JAX_CACHE"}
    proc = subprocess.run([sys.executable, "-c", script, str(cache)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == str(cache)
    assert any("deepfool_kernel" in f.name for f in cache.iterdir())
    off = subprocess.run([sys.executable, "-c", script, str(tmp_path / "off")], capture_output=True,
                         text=True, env={**env, "MINI_ADV_JAX_CACHE": "0"}, timeout=300)
    assert off.returncode == 0 and off.stdout.strip().splitlines()[-1] == "None"
    assert not (tmp_path / "off").exists()
