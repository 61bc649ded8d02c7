import json
import math
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mini_adv import attacks, data, nets, parallel


def deepfool_one(p, X):
    return attacks.deepfool_kernel(p, X)


def flow_one(p, X):
    return attacks.gradient_flow_kernel(p, X, jnp.asarray(2.0 * np.sqrt(X.shape[-1]), X.dtype))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kernel", [deepfool_one, flow_one])
@pytest.mark.parametrize("strategy", ["vmap", "loop", "auto"])
def test_every_strategy_returns_each_networks_own_result(kernel, strategy, seed, stack):
    """out[i] = kernel(params[i], X[i]): the same flips and the same perturbations as calling
    the kernel network by network. Only rounding may differ between a batched and a single
    product (on a 2-core CPU, 20 seeds gave bitwise-identical results for both kernels and
    both strategies), hence rtol 1e-5 and the same flip decisions."""
    p, X = stack(jax.random.key(seed))
    out = parallel.map_networks(kernel, p, X, strategy=strategy)
    assert out.x_adv.shape == X.shape
    for i in range(X.shape[0]):
        one = kernel(jax.tree.map(lambda a: a[i], p), X[i])
        np.testing.assert_array_equal(out.flipped[i], one.flipped)
        np.testing.assert_array_equal(out.status[i], one.status)
        np.testing.assert_allclose(out.delta_norm[i], one.delta_norm, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out.x_adv[i], one.x_adv, rtol=1e-5, atol=1e-5)


class _FakeDevice:
    platform = "gpu"


def test_auto_is_the_size_rule_with_the_kernels_threshold():
    """vmap up to the threshold (the kernel's: VMAP_MAX_FLOPS by default, the larger
    VMAP_MAX_FLOPS_UNIFORM for kernels like DeepFool), the loop above; vmap on accelerators."""
    p = nets.init_params(jax.random.key(0), [64, 16, 4], n=2)
    X = jnp.zeros((2, 16, 64))
    flops = parallel.network_flops(p, X)
    assert flops == 16 * (64 * 16 + 16 * 4)
    assert parallel.VMAP_MAX_FLOPS < flops < parallel.VMAP_MAX_FLOPS_UNIFORM
    assert parallel.choose_strategy(p, X) == "loop"
    assert parallel.choose_strategy(p, X, vmap_max_flops=parallel.VMAP_MAX_FLOPS_UNIFORM) == "vmap"
    assert parallel.choose_strategy(p, X, vmap_max_flops=flops) == "vmap"
    assert parallel.choose_strategy(p, X, devices=[_FakeDevice()]) == "vmap"


@pytest.mark.parametrize("threshold", [0.0, math.inf])
def test_auto_runs_the_chosen_strategy_and_gives_the_same_numbers_every_time(threshold, stack):
    """auto is deterministic: it returns exactly what the strategy it picks returns, call
    after call (the same key gives the same numbers, as the book needs)."""
    p, X = stack(jax.random.key(3), N=4, n=6, widths=(24, 12, 6))
    pick = "vmap" if threshold else "loop"
    assert parallel.choose_strategy(p, X, vmap_max_flops=threshold) == pick
    ref = parallel.map_networks(flow_one, p, X, strategy=pick)
    for _ in range(3):
        out = parallel.map_networks(flow_one, p, X, vmap_max_flops=threshold)
        for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(ref)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_bad_calls_raise(stack):
    p, X = stack(jax.random.key(0), N=3)
    with pytest.raises(ValueError, match="unknown strategy"):
        parallel.map_networks(deepfool_one, p, X, strategy="pmap")
    with pytest.raises(ValueError, match="leading axis 2, but there are 3 networks"):
        parallel.map_networks(deepfool_one, p, X[:2])
    with pytest.raises(ValueError, match="kernel must be a function"):
        parallel.map_networks("deepfool", p, X)
    with pytest.raises(ValueError, match="devices is empty"):
        parallel.map_networks(deepfool_one, p, X, devices=[])
    with pytest.raises(ValueError, match="vmap_max_flops must be"):
        parallel.map_networks(deepfool_one, p, X, vmap_max_flops=-1.0)
    with pytest.raises(ValueError, match="vmap_max_flops must be"):
        parallel.map_networks(deepfool_one, p, X, vmap_max_flops=float("nan"))
    with pytest.raises(ValueError, match="vmap_max_flops must be"):
        parallel.map_networks(deepfool_one, p, X, vmap_max_flops="big")


def budget_one(p, X, budget):
    return attacks.gradient_flow_kernel(p, X, budget)


def test_arguments_need_one_slice_per_network_and_say_so(stack):
    p, X = stack(jax.random.key(0), N=3, n=4)
    with pytest.raises(ValueError, match=r"argument 1 is \(or holds\) a scalar.*jnp\.full\(\(N,\), value\)"):
        parallel.map_networks(budget_one, p, X, jnp.asarray(5.0))
    with pytest.raises(ValueError, match="argument 1 is"):
        parallel.map_networks(budget_one, p, X, 5.0)
    out = parallel.map_networks(budget_one, p, X, jnp.full((3,), 5.0))   # one budget per network
    one = budget_one(jax.tree.map(lambda a: a[1], p), X[1], jnp.asarray(5.0))
    np.testing.assert_array_equal(out.flipped[1], one.flipped)
    single = jax.tree.map(lambda a: a[0], p)
    with pytest.raises(ValueError, match="must be a stack of N networks"):
        parallel.map_networks(deepfool_one, single, X)
    with pytest.raises(ValueError, match="weights of params contain NaN or inf"):
        parallel.map_networks(deepfool_one, p.replace(readout=p.readout.at[2, 0].set(jnp.nan)), X)


def test_compiled_strategies_are_cached_per_kernel_and_can_be_dropped(monkeypatch, stack):
    """Same kernel object and shapes: nothing compiles again, until the cache is cleared or the
    entry is pushed out by MAX_CACHED_RUNNERS newer ones."""
    from mini_adv import runtime

    p, X = stack(jax.random.key(5), N=2, n=3, widths=(8, 4))
    p2, X2 = stack(jax.random.key(6), N=2, n=3, widths=(8, 4))

    def k_a(q, Y):
        return attacks.deepfool_kernel(q, Y)

    def k_b(q, Y):
        return attacks.deepfool_kernel(q, Y, max_iter=7)

    old = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)   # count real compilations
    try:
        jax.block_until_ready(parallel.map_networks(k_a, p, X, strategy="vmap"))
        jax.block_until_ready((p2, X2))
        with runtime.count_compilations() as c:
            jax.block_until_ready(parallel.map_networks(k_a, p2, X2, strategy="vmap"))
        assert c.count == 0
        monkeypatch.setattr(parallel, "MAX_CACHED_RUNNERS", 1)
        jax.block_until_ready(parallel.map_networks(k_b, p, X, strategy="vmap"))   # pushes k_a out
        with runtime.count_compilations() as c:
            jax.block_until_ready(parallel.map_networks(k_a, p2, X2, strategy="vmap"))
        assert c.count >= 1
        parallel.clear_cache()
        with runtime.count_compilations() as c:
            jax.block_until_ready(parallel.map_networks(k_a, p2, X2, strategy="vmap"))
        assert c.count >= 1
    finally:
        jax.config.update("jax_enable_compilation_cache", old)


TWO_DEVICES = textwrap.dedent("""
    import json, jax, jax.numpy as jnp, numpy as np
    from mini_adv import attacks, data, nets, parallel
    def kernel(p, X):
        return attacks.deepfool_kernel(p, X)
    N, n, d = 5, 8, 16
    p = nets.init_params(jax.random.key(0), [d, 8, 4], n=N)
    X = data.sphere(jax.random.key(1), N * n, d).reshape(N, n, d)
    devs = jax.local_devices()
    out = {"devices": len(devs)}
    # where the loop ran each network: the devices of the per-network outputs that it gathers
    # with jax.device_get (observed by wrapping that public JAX function, no hook in the code)
    gathered, device_get = [], jax.device_get
    def spy(tree):
        if isinstance(tree, list):
            gathered.append([next(iter(jax.tree.leaves(o)[0].devices())).id for o in tree])
        return device_get(tree)
    jax.device_get = spy
    for s in ("vmap", "loop"):
        r = parallel.map_networks(kernel, p, X, strategy=s)
        one = parallel.map_networks(kernel, p, X, strategy=s, devices=devs[:1])
        out[s] = {"shape": list(r.x_adv.shape),
                  "on": sorted(d.id for d in r.x_adv.sharding.device_set),
                  "equal": bool(np.allclose(np.asarray(r.x_adv), np.asarray(one.x_adv), atol=1e-6)),
                  "flipped_equal": bool(np.array_equal(np.asarray(r.flipped), np.asarray(one.flipped)))}
    gathered.clear()
    parallel.map_networks(kernel, p, X, strategy="loop")
    out["loop_placement"] = gathered
    print(json.dumps(out))
""")


def test_the_network_axis_is_sharded_over_two_forced_host_devices():
    """With two CPU devices (XLA_FLAGS set before JAX starts, hence a subprocess), vmap
    shards the 5 networks (padded to 6) over both and the loop alternates between them;
    both return what one device returns."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", TWO_DEVICES], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["devices"] == 2
    assert out["vmap"]["on"] == [0, 1] and out["vmap"]["shape"] == [5, 8, 16]
    assert out["vmap"]["equal"] and out["vmap"]["flipped_equal"]
    assert out["loop"]["equal"] and out["loop"]["flipped_equal"]
    assert out["loop_placement"] == [[0, 1, 0, 1, 0]]   # network i on device i mod 2
