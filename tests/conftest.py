import os

import jax
import pytest

os.environ.setdefault("MINI_ADV_STATIC", "1")  # no progress bars in test logs


@pytest.fixture
def fresh_key(request):
    """A key that differs between test runs (fresh random draws), printed on failure."""
    seed = int.from_bytes(os.urandom(4), "little")
    request.node.user_properties.append(("seed", seed))
    print(f"fresh seed: {seed}")
    return jax.random.key(seed)
