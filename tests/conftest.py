import os

import jax
import pytest

os.environ.setdefault("MINI_ADV_STATIC", "1")  # no progress bars in test logs


def pytest_generate_tests(metafunc):
    """MINI_ADV_REPEAT=N runs every fresh-key test N times (N fresh seeds), to measure flakiness."""
    n = int(os.environ.get("MINI_ADV_REPEAT", "1"))
    if n > 1 and "fresh_key" in metafunc.fixturenames:
        metafunc.parametrize("fresh_key", range(n), indirect=True)


@pytest.fixture
def fresh_key(request):
    """A key that differs between test runs (fresh random draws), printed on failure.

    MINI_ADV_SEED=<seed> replays the draws of a failed run.
    """
    seed = int(os.environ.get("MINI_ADV_SEED") or int.from_bytes(os.urandom(4), "little"))
    request.node.user_properties.append(("seed", seed))
    print(f"fresh seed: {seed}")
    return jax.random.key(seed)
