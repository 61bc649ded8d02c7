"""The package's input rules (mini_adv.validation), case by case, and the dtype policy of the
public functions of nets, data and gradients on int, bf16, mixed-x64, stacked and NaN-weight
input (a correct result or a clear ValueError)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mini_adv import data, gradients, nets, runtime, validation

D = 6


def net(key=0, widths=(D, 5, 4), **kw):
    return nets.init_params(jax.random.key(key), list(widths), **kw)


def batch(key=1, B=3, d=D):
    return data.sphere(jax.random.key(key), B, d)


# ---- numbers -------------------------------------------------------------------------------

@pytest.mark.parametrize("value,expected", [
    (5, 5.0), (2.5, 2.5), (np.float32(2.5), 2.5), (np.float64(-1.25), -1.25), (np.int64(3), 3.0),
    (np.uint8(7), 7.0), (jnp.asarray(1.5), 1.5), (jnp.asarray(2, jnp.int32), 2.0),
    (np.asarray(4.0), 4.0),
])
def test_check_number_accepts_python_numpy_and_0d_jax_scalars(value, expected):
    v = validation.check_number("x", value)
    assert v == expected and type(v) is float


@pytest.mark.parametrize("value", [5, np.int64(5), np.int32(5), np.uint16(5), jnp.asarray(5)])
def test_check_number_integer_returns_a_python_int(value):
    v = validation.check_number("n", value, integer=True)
    assert v == 5 and type(v) is int


@pytest.mark.parametrize("value,kwargs,msg", [
    (True, {}, r"x must be a number, not a boolean; got True"),
    (np.bool_(False), {}, "not a boolean"),
    (jnp.asarray(True), {}, "not a boolean"),
    (float("nan"), {}, r"x must be a finite number; got nan"),
    (float("inf"), {}, r"finite number; got inf"),
    (-np.inf, {}, r"finite number; got -inf"),
    (np.float32("nan"), {}, r"finite number; got nan"),
    (np.array([1.0, 2.0]), {}, r"single number; got an array of shape \(2,\)"),
    (jnp.ones((1,)), {}, r"single number; got an array of shape \(1,\)"),
    ("5", {}, r"x must be a number; got str '5'"),
    (None, {}, r"must be a number; got NoneType"),
    ([1.0], {}, "must be a number; got list"),
    (1j, {}, "not complex"),
    (5.0, {"integer": True}, r"got the float 5.0 \(pass an integer\)"),
    (2.5, {"integer": True}, r"x must be an integer; got 2.5"),
    (np.float32(3.0), {"integer": True}, r"got the float 3.0"),
    (0, {"low": 0.0}, r"x must be a finite number > 0; got 0"),
    (np.float32(-1.0), {"low": 0.0}, r"x must be a finite number > 0; got -1.0"),
    (-0.5, {"low": 0.0, "strict_low": False}, r"≥ 0; got -0.5"),
    (1.5, {"high": 1.0}, r"≤ 1; got 1.5"),
    (1.0, {"high": 1.0, "strict_high": True}, r"< 1; got 1.0"),
    (2.0, {"low": 0.0, "high": 1.0}, r"> 0 and ≤ 1; got 2.0"),
])
def test_check_number_rejects_with_a_message_that_names_the_value(value, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        validation.check_number("x", value, **kwargs)


def test_check_number_bounds_accept_the_edges_they_allow():
    assert validation.check_number("x", 0.0, low=0.0, strict_low=False) == 0.0
    assert validation.check_number("x", 1.0, high=1.0) == 1.0
    assert validation.check_number("x", np.float32(0.5), low=0.0, high=1.0, strict_high=True) == 0.5


def test_check_number_of_a_traced_value_says_to_pass_a_static_number():
    with pytest.raises(ValueError, match="concrete number, not a traced value"):
        jax.jit(lambda v: validation.check_number("max_distance", v))(1.0)


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint8(2), jnp.asarray(4), np.asarray(9)])
def test_check_size_accepts_positive_integers(value):
    v = validation.check_size("n", value)
    assert v == int(value) and type(v) is int


@pytest.mark.parametrize("value", [0, -1, np.int64(0), 2.0, 2.5, True, "3", None, np.array([3]),
                                   jnp.asarray(3.0), float("nan")])
def test_check_size_rejects_everything_else(value):
    with pytest.raises(ValueError, match=r"^n must be a positive integer; got "):
        validation.check_size("n", value)


@pytest.mark.parametrize("value,ok", [(0.5, True), (1.0, True), (np.float32(0.25), True),
                                      (jnp.asarray(1e-3), True), (0.0, False), (1.5, False),
                                      (-0.1, False), (float("nan"), False), (True, False)])
def test_check_fraction_is_the_interval_zero_one(value, ok):
    if ok:
        assert validation.check_fraction("step_fraction", value) == pytest.approx(float(value))
    else:
        with pytest.raises(ValueError, match=r"step_fraction must lie in \(0, 1\]"):
            validation.check_fraction("step_fraction", value)


# ---- widths and keys -----------------------------------------------------------------------

@pytest.mark.parametrize("widths,expected", [
    ([4, 3], (4, 3)), ((4, 3, 2), (4, 3, 2)), (np.array([4, 3]), (4, 3)),
    (jnp.array([4, 3, 1]), (4, 3, 1)), ([np.int64(4), 3], (4, 3)), (range(2, 5), (2, 3, 4)),
])
def test_check_widths_accepts_sequences_and_integer_arrays(widths, expected):
    w = validation.check_widths(widths)
    assert w == expected and all(type(v) is int for v in w)


@pytest.mark.parametrize("widths,msg", [
    ([10], "at least 2 entries"), ([], "at least 2 entries"), (np.array([4]), "at least 2 entries"),
    ([10, 0], "every width must be a positive integer"), ([10, -3], "positive integer"),
    ([10, 2.5], "positive integer"), ([10, True], "positive integer"),
    (np.array([4.0, 3.0]), "positive integer"), ([10, "3"], "positive integer"),
    (5, "sequence"), ("ab", "sequence"), (None, "sequence"),
])
def test_check_widths_rejects(widths, msg):
    with pytest.raises(ValueError, match=msg):
        validation.check_widths(widths)


def test_check_key_accepts_new_and_raw_keys():
    k = jax.random.key(0)
    assert validation.check_key(k) is k
    raw = jax.random.PRNGKey(0)
    assert validation.check_key(raw) is raw
    traced = jax.jit(lambda key: jax.random.key_data(validation.check_key(key)))(k)
    np.testing.assert_array_equal(traced, jax.random.key_data(k))


@pytest.mark.parametrize("key", [0, np.int64(0), jnp.asarray(0), jnp.asarray(0, jnp.uint32), None,
                                 "0", jax.random.split(jax.random.key(0), 2),
                                 jnp.zeros(3, jnp.uint32), jnp.zeros(2, jnp.int32)])
def test_check_key_rejects_seeds_and_key_arrays(key):
    with pytest.raises(ValueError, match=r"key must be a JAX PRNG key, e\.g\. jax\.random\.key\(0\)"):
        validation.check_key(key)


# ---- arrays ----------------------------------------------------------------------------------

def test_check_finite():
    validation.check_finite("X", jnp.ones(3))
    validation.check_finite("X", np.arange(3))          # integers are always finite
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="X contains NaN or inf"):
            validation.check_finite("X", jnp.ones(3).at[1].set(bad))
    # under a trace the values are unknown: the check is skipped, the NaN goes through
    out = jax.jit(lambda x: (validation.check_finite("X", x), x)[1])(jnp.full(2, jnp.nan))
    assert bool(jnp.all(jnp.isnan(out)))


@pytest.mark.parametrize("x,dtype,expected", [
    ([[1.0, 2.0]], None, jnp.float32), (np.ones(3, np.float64), None, jnp.float32),
    (jnp.ones(3, jnp.bfloat16), None, jnp.bfloat16), (jnp.ones(3, jnp.bfloat16), jnp.float32, jnp.float32),
    (np.float32(1.0), None, jnp.float32),
])
def test_check_float_array_returns_a_float_jax_array(x, dtype, expected):
    a = validation.check_float_array("X", x, dtype)
    assert isinstance(a, jax.Array) and a.dtype == expected


@pytest.mark.parametrize("x,msg", [
    (np.arange(3), r"X must hold real floating-point numbers; got dtype int64\. Cast it first"),
    (jnp.arange(3), "got dtype int32"), (jnp.ones(2, bool), "got dtype bool"),
    (jnp.ones(2, jnp.complex64), "got dtype complex64"), ([1, 2], "got dtype int"),
    ("abc", "X must be an array; got str"), (None, "must be an array; got NoneType"),
    (jnp.ones(2).at[0].set(jnp.nan), "X contains NaN or inf"),
])
def test_check_float_array_rejects(x, msg):
    with pytest.raises(ValueError, match=msg):
        validation.check_float_array("X", x)


# ---- networks --------------------------------------------------------------------------------

def test_check_params_single_and_stacked():
    p, stack = net(), net(n=3)
    assert validation.check_params(p) is p
    module = nets.RandomMLP([D, 4], rngs=nnx.Rngs(0))
    assert isinstance(validation.check_params(module), nets.MLPParams)
    assert validation.check_params(stack, stacked=True) is stack
    assert validation.check_params(stack, stacked=None) is stack
    assert validation.check_params(p, stacked=None) is p
    with pytest.raises(ValueError, match=r"net is a stack of 3 networks; this function takes one "
                                         r"network.*parallel\.map_networks"):
        validation.check_params(stack)
    with pytest.raises(ValueError, match=r"must be a stack of N networks.*n=N\); got a single"):
        validation.check_params(p, stacked=True)
    with pytest.raises(ValueError, match="expected a network"):
        validation.check_params(object())
    with pytest.raises(ValueError, match="expected a network"):
        validation.check_params(jnp.ones((3, 3)))


@pytest.mark.parametrize("leaf", ["kernel", "readout", "bias"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_check_params_rejects_non_finite_weights(leaf, bad):
    p = net(bias=True)
    if leaf == "kernel":
        p = p.replace(kernels=(p.kernels[0], p.kernels[1].at[0, 0].set(bad)))
    elif leaf == "readout":
        p = p.replace(readout=p.readout.at[-1].set(bad))
    else:
        p = p.replace(biases=(p.biases[0].at[2].set(bad), p.biases[1]))
    with pytest.raises(ValueError, match="the weights of net contain NaN or inf"):
        validation.check_params(p)


@pytest.mark.parametrize("on_host", [True, False])
def test_finiteness_is_read_on_the_host_or_by_one_compiled_reduction(monkeypatch, on_host):
    """Host arrays are read by NumPy; arrays on an accelerator by the compiled reduction. The
    test forces each branch (this CPU has no accelerator) and checks both give one verdict."""
    monkeypatch.setattr(validation, "_on_host", lambda a: on_host)
    p = net(bias=True)
    assert validation.check_params(p) is not None
    with pytest.raises(ValueError, match="the weights of net contain NaN or inf"):
        validation.check_params(p.replace(readout=p.readout.at[0].set(np.nan)))
    X = jnp.ones((3, D))
    assert validation.check_batch(p, X).shape == (3, D)
    with pytest.raises(ValueError, match="X contains NaN or inf"):
        validation.check_batch(p, X.at[2, 1].set(np.inf))


def test_on_host_tells_numpy_and_cpu_arrays_from_tracers():
    assert validation._on_host(np.ones(3)) and validation._on_host(jnp.ones(3))
    assert jax.jit(lambda a: jnp.asarray(validation._on_host(a)))(jnp.ones(3)) == False  # noqa: E712


def test_check_params_rejects_low_precision_integer_and_mixed_weights():
    p = net()
    bf16 = jax.tree.map(lambda a: a.astype(jnp.bfloat16), p)
    with pytest.raises(ValueError, match=r"must be float32 or float64; got \['bfloat16'\]"):
        validation.check_params(bf16)
    with pytest.raises(ValueError, match="must be float32 or float64"):
        validation.check_params(jax.tree.map(lambda a: a.astype(jnp.int32), p))
    with runtime.float64():
        mixed = p.replace(readout=p.readout.astype(jnp.float64))
        with pytest.raises(ValueError, match=r"mix dtypes \['float32', 'float64'\]"):
            validation.check_params(mixed)


def test_params_dtype():
    assert validation.params_dtype(net()) == np.float32
    with runtime.float64():
        assert validation.params_dtype(net()) == np.float64


def test_check_params_under_jit_checks_structure_not_values():
    p = net()
    nan_p = p.replace(readout=p.readout.at[0].set(jnp.nan))
    out = jax.jit(lambda q: validation.check_params(q).readout)(nan_p)   # values unknown: skipped
    assert bool(jnp.isnan(out[0]))
    with pytest.raises(ValueError, match="stack of 2 networks"):
        jax.jit(lambda q: validation.check_params(q).readout)(net(n=2))


# ---- batches: the dtype policy ---------------------------------------------------------------

def test_check_batch_casts_floating_input_to_the_weights_dtype():
    p, X = net(), batch()
    np.testing.assert_array_equal(validation.check_batch(p, X), X)
    for x in (X.astype(jnp.bfloat16), X.astype(jnp.float16), np.asarray(X, np.float64), X.tolist()):
        out = validation.check_batch(p, x)
        assert out.dtype == jnp.float32 and out.shape == X.shape
        np.testing.assert_array_equal(out, jnp.asarray(np.asarray(x, np.float32)))
    with runtime.float64():
        p64 = net()
        assert p64.kernels[0].dtype == jnp.float64
        out = validation.check_batch(p64, X)            # float32 drawn before: cast up, exactly
        assert out.dtype == jnp.float64
        np.testing.assert_array_equal(np.asarray(out), np.asarray(X, np.float64))
        X64 = batch()
        assert validation.check_batch(p, X64).dtype == jnp.float32   # float32 weights: cast down


@pytest.mark.parametrize("x,msg", [
    (jnp.ones((3, D), jnp.int32), r"X must hold real floating-point numbers; got dtype int32"),
    (np.ones((3, D), np.int64), "got dtype int64"), (jnp.ones((3, D), bool), "got dtype bool"),
    (jnp.ones((3, D), jnp.complex64), "got dtype complex64"),
    (jnp.ones((3, D)).at[1, 2].set(jnp.nan), "X contains NaN or inf"),
    (jnp.ones((3, D)).at[0, 0].set(-jnp.inf), "X contains NaN or inf"),
    (jnp.ones(D), rf"X must have shape \(B, d\) with d = {D}; got shape \({D},\)"),
    (jnp.ones((3, D + 1)), rf"d = {D}; got shape \(3, {D + 1}\)"),
    (jnp.ones((2, 3, D)), r"got shape \(2, 3, 6\)"),
    (jnp.ones((0, D)), r"X is empty \(B = 0\); pass at least one input"),
    ("X", "X must be an array; got str"),
])
def test_check_batch_rejects(x, msg):
    with pytest.raises(ValueError, match=msg):
        validation.check_batch(net(), x)


def test_check_batch_names_the_argument():
    with pytest.raises(ValueError, match="directions contains NaN"):
        validation.check_batch(net(), jnp.full((1, D), jnp.nan), "directions")


def test_check_batch_under_jit_checks_shape_and_dtype_not_values():
    p = net()
    f = jax.jit(lambda X: validation.check_batch(p, X))
    out = f(jnp.full((2, D), jnp.nan))        # values unknown under the trace: no value check
    assert out.shape == (2, D) and bool(jnp.all(jnp.isnan(out)))
    assert f(jnp.ones((2, D), jnp.bfloat16)).dtype == jnp.float32
    with pytest.raises(ValueError, match=r"shape \(B, d\) with d = 6"):
        f(jnp.ones((2, D + 1)))
    with pytest.raises(ValueError, match=r"B = 0"):
        f(jnp.ones((0, D)))
    with pytest.raises(ValueError, match="got dtype int32"):
        f(jnp.ones((2, D), jnp.int32))


def test_check_stacked_batch():
    stack = net(n=3)
    X = data.sphere_batches(jax.random.key(2), 3, 4, D)
    assert validation.check_stacked_batch(stack, X.astype(jnp.bfloat16)).dtype == jnp.float32
    for bad in (X[:2], X[:, :0], X[..., :-1], X[0]):
        with pytest.raises(ValueError, match=r"shape \(N, B, d\) = \(3, B, 6\) with B ≥ 1"):
            validation.check_stacked_batch(stack, bad)
    with pytest.raises(ValueError, match="NaN or inf"):
        validation.check_stacked_batch(stack, X.at[1, 1, 1].set(jnp.nan))


# ---- the public functions of nets, data and gradients on awkward input -----------------------
#
# Each case: a correct result (the function applied to the input cast to the weights' dtype,
# in that dtype) or a ValueError with a clear message. The lead extends the table to every
# module after the merge.

def _module(p: nets.MLPParams) -> nets.RandomMLP:
    m = nets.RandomMLP(list(p.widths), rngs=nnx.Rngs(0))
    for i, k in enumerate(p.kernels):
        setattr(m, f"kernel_{i}", nnx.Param(k))
    m.readout = nnx.Param(p.readout)
    return m


NETWORK_FUNCTIONS = {
    "nets.apply": nets.apply,
    "nets.forward": lambda p, X: nets.forward(p, X)[0],
    "RandomMLP": lambda p, X: _module(p)(X),
    "gradients.value_and_input_grad": gradients.value_and_input_grad,
    "gradients.euler_residual": gradients.euler_residual,
    "gradients.linearized_distance": gradients.linearized_distance,
    "gradients.flip_direction": gradients.flip_direction,
}
CHECKED = {"RandomMLP", "nets.apply", "nets.forward"}   # module and kernels: static checks only

INPUTS = ("int", "bf16", "mixed-x64", "stacked", "nan-weights", "bf16-weights")


def _case(kind):
    """(params, X, reference input or None, context manager)."""
    p, X = net(3), batch(4)
    if kind == "int":
        return p, jnp.round(X).astype(jnp.int32), None
    if kind == "bf16":
        Xb = X.astype(jnp.bfloat16)
        return p, Xb, Xb.astype(jnp.float32)
    if kind == "stacked":
        return net(3, n=3), X, None
    if kind == "nan-weights":
        return p.replace(kernels=(p.kernels[0].at[0, 1].set(jnp.nan), p.kernels[1])), X, None
    if kind == "bf16-weights":
        return jax.tree.map(lambda a: a.astype(jnp.bfloat16), p), X, X.astype(jnp.bfloat16)
    raise AssertionError(kind)


EXPECTED_ERRORS = {   # kind -> message, for the functions that do not compute a result
    "int": "must hold real floating-point numbers; got dtype int32",
    "stacked": "stack of 3 networks",
    "nan-weights": "weights.* contain NaN or inf",
    "bf16-weights": "must be float32 or float64",
}


def _leaves(out):
    return [np.asarray(a) for a in jax.tree.leaves(out)]


@pytest.mark.parametrize("name,kind", [(n, k) for n in sorted(NETWORK_FUNCTIONS) for k in INPUTS
                                       if not (n == "RandomMLP" and k == "stacked")])   # one net by construction
def test_network_functions_on_awkward_input(name, kind):
    fn = NETWORK_FUNCTIONS[name]
    if kind == "mixed-x64":
        X32 = batch(4)                             # float32, drawn before x64 is on
        with runtime.float64():
            p64 = net(3)
            assert p64.kernels[0].dtype == p64.readout.dtype == jnp.float64
            out = fn(p64, X32)
            ref = fn(p64, X32.astype(jnp.float64))
            assert all(a.dtype == np.float64 for a in _leaves(out))
            # the same network in float32 agrees to float32 rounding
            p32 = jax.tree.map(lambda a: a.astype(jnp.float32), p64)
        for a, b in zip(_leaves(out), _leaves(ref)):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(_leaves(out), _leaves(fn(p32, X32))):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
        return
    p, X, ref_X = _case(kind)
    if kind == "bf16-weights" and name in CHECKED:
        out = fn(p, X)                              # an unchecked forward pass in bfloat16
        assert out.dtype == jnp.bfloat16
        np.testing.assert_array_equal(out, fn(p, ref_X))
        exact = nets.apply(jax.tree.map(lambda a: a.astype(jnp.float32), p), X)
        np.testing.assert_allclose(np.asarray(out, np.float32), exact, rtol=0.05, atol=0.05)
        return
    if kind in EXPECTED_ERRORS:
        with pytest.raises(ValueError, match=EXPECTED_ERRORS[kind]):
            fn(p, X)
        return
    out = fn(p, X)
    assert all(a.dtype == np.float32 for a in _leaves(out))
    for a, b in zip(_leaves(out), _leaves(fn(p, ref_X))):
        np.testing.assert_array_equal(a, b)


DATA_CASES = [   # (call, expected shape or error message)
    (lambda: data.sphere(jax.random.key(0), np.int64(3), jnp.asarray(4), radius=np.float32(2)), (3, 4)),
    (lambda: data.sphere(jax.random.key(0), 3, 4, radius=jnp.asarray(2.0)), (3, 4)),
    (lambda: data.sphere(0, 3, 4), "key must be a JAX PRNG key"),
    (lambda: data.sphere(jax.random.key(0), 3.0, 4), "n must be a positive integer; got 3.0"),
    (lambda: data.sphere(jax.random.key(0), 3, True), "d must be a positive integer; got True"),
    (lambda: data.sphere(jax.random.key(0), 3, 4, radius=np.float32("nan")), "radius must be a positive"),
    (lambda: data.sphere(jax.random.key(0), 3, 4, radius=True), "radius must be a positive"),
    (lambda: data.sphere_batches(jax.random.key(0), np.int32(2), 3, 4), (2, 3, 4)),
    (lambda: data.sphere_batches(jax.random.key(0), 0, 3, 4), "n_networks must be a positive integer"),
    (lambda: data.sphere_batches(7, 2, 3, 4), "key must be a JAX PRNG key"),
    (lambda: data.signs(jax.random.key(0), np.int64(5)), (5,)),
    (lambda: data.signs(jax.random.key(0), 0), "n must be a positive integer"),
    (lambda: data.nearly_orthogonal(jax.random.key(0), np.int64(4), 9)[0], (4, 9)),
    (lambda: data.nearly_orthogonal(1, 4, 9), "key must be a JAX PRNG key"),
    (lambda: data.cluster_means(jax.random.key(0), 2, 5, radius=np.float64(1.0))[0], (2, 5)),
    (lambda: data.clusters(jax.random.key(0), jnp.eye(2, 5), jnp.array([1.0, -1.0]), np.int64(6),
                           noise=np.float32(0.5))[0], (6, 5)),
    (lambda: data.clusters(jax.random.key(0), jnp.eye(2, 5, dtype=jnp.bfloat16), jnp.array([1.0, -1.0]),
                           6)[0], (6, 5)),
    (lambda: data.clusters(jax.random.key(0), jnp.ones((2, 5), jnp.int32), jnp.array([1.0, -1.0]), 6),
     "means must hold real floating-point numbers"),
    (lambda: data.clusters(jax.random.key(0), jnp.eye(2, 5).at[0, 0].set(jnp.nan),
                           jnp.array([1.0, -1.0]), 6), "means contains NaN or inf"),
    (lambda: data.clusters(jax.random.key(0), jnp.eye(2, 5), jnp.array([1.0, -1.0]), 6,
                           noise=-0.1), "noise must be a finite number ≥ 0"),
    (lambda: data.clusters(jax.random.key(0), jnp.eye(2, 5), jnp.array([1.0, 0.0]), 6), "labels must be ±1"),
    (lambda: data.coherence(np.eye(3, dtype=np.int64)), ()),
    (lambda: data.coherence(np.ones((2, 3)) * np.nan), "X contains NaN or inf"),
]


@pytest.mark.parametrize("i", range(len(DATA_CASES)))
def test_data_functions_on_awkward_input(i):
    call, expected = DATA_CASES[i]
    if isinstance(expected, str):
        with pytest.raises(ValueError, match=expected):
            call()
    else:
        out = call()
        assert np.shape(out) == expected
        assert bool(np.all(np.isfinite(np.asarray(out, np.float64))))


def test_data_follows_the_default_float_dtype():
    assert data.sphere(jax.random.key(0), 2, 3).dtype == jnp.float32
    assert data.signs(jax.random.key(0), 4).dtype == jnp.float32
    with runtime.float64():
        assert data.sphere(jax.random.key(0), 2, 3).dtype == jnp.float64
        assert data.sphere_batches(jax.random.key(0), 2, 2, 3).dtype == jnp.float64
        assert data.signs(jax.random.key(0), 4).dtype == jnp.float64
