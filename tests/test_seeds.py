"""The seeds of ``fresh_key`` (tests/conftest.py): stable across processes and runs, one per
test id, a different one for every repeat, and a replay line that selects the same test."""

import os
import subprocess
import sys

import pytest

from conftest import base_nodeid, replay_command, seed_for

RAYS = "tests/test_rays.py::test_linear_predictions_match_monte_carlo"


def test_the_default_seed_is_a_fixed_hash_of_the_test_id():
    # recorded value: a change of the derivation changes every statistical test's draws
    assert seed_for(RAYS) == 3856740755
    assert seed_for(RAYS + "x") != seed_for(RAYS)
    assert seed_for("tests/test_a.py::test_b[flow]") != seed_for("tests/test_a.py::test_b[deepfool]")


def test_the_seed_does_not_depend_on_pythons_salted_hash():
    code = f"import sys; sys.path.insert(0, 'tests'); from conftest import seed_for; print(seed_for({RAYS!r}))"
    out = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONHASHSEED": salt}).stdout.strip() for salt in ("1", "2")}
    assert out == {str(seed_for(RAYS))}


@pytest.mark.parametrize("setting", [None, 12345])
def test_each_repeat_gets_its_own_seed_and_the_first_is_the_base_seed(setting):
    seeds = [seed_for(f"{RAYS}[repeat{i}]", i, setting) for i in range(20)]
    assert len(set(seeds)) == 20
    assert seeds[0] == (seed_for(RAYS) if setting is None else 12345)
    assert seeds == [seed_for(f"{RAYS}[repeat{i}]", i, setting) for i in range(20)]


def test_random_seeds_differ_from_call_to_call():
    assert len({seed_for(RAYS, 0, "random") for _ in range(8)}) > 1


@pytest.mark.parametrize("nodeid, plain", [
    ("tests/t.py::test_a[repeat3]", "tests/t.py::test_a"),
    ("tests/t.py::test_a[flow-repeat0]", "tests/t.py::test_a[flow]"),
    ("tests/t.py::test_a[repeat12-flow]", "tests/t.py::test_a[flow]"),
    ("tests/t.py::test_a[vmap-repeat1-deepfool_one]", "tests/t.py::test_a[vmap-deepfool_one]"),
    ("tests/t.py::test_a[flow]", "tests/t.py::test_a[flow]"),
])
def test_the_replay_line_selects_the_test_without_its_repeat_index(nodeid, plain):
    assert base_nodeid(nodeid) == plain
    line = replay_command(nodeid, 7)
    assert line.startswith("MINI_ADV_SEED=7 ") and line.endswith(f" -m pytest '{plain}'")
