import os
import subprocess
import sys
import textwrap

import jax
import matplotlib
import pytest

matplotlib.use("Agg")

import jax.numpy as jnp  # noqa: E402

from mini_adv import runtime  # noqa: E402
from mini_adv.figures import style as plotting  # noqa: E402


@pytest.mark.parametrize("backend,expected", [("cpu", 1), ("gpu", 2), ("tpu", 2)])
def test_sizes_pick_the_gpu_preset_on_accelerators_only(monkeypatch, backend, expected):
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    assert runtime.on_accelerator() == (backend != "cpu")
    cpu, gpu = {"n": 1}, {"n": 2}
    out = runtime.sizes(cpu=cpu, gpu=gpu)
    assert out == {"n": expected}
    out["n"] = 99                                  # a copy: the presets are not changed
    assert cpu == {"n": 1} and gpu == {"n": 2}
    with pytest.raises(ValueError, match="same keys"):
        runtime.sizes(cpu={"n": 1}, gpu={"m": 2})


CACHE_FLAGS = ("jax_enable_compilation_cache", "jax_compilation_cache_dir",
               "jax_persistent_cache_min_compile_time_secs", "jax_persistent_cache_min_entry_size_bytes",
               "jax_enable_x64")


def _flags():
    return {f: getattr(jax.config, f) for f in CACHE_FLAGS}


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    """HOME and the cache variables pointed at an empty temporary directory."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("MINI_ADV_JAX_CACHE", raising=False)
    return home


@pytest.fixture
def restore_flags():
    before = _flags()
    yield before
    for f, v in before.items():
        jax.config.update(f, v)


def test_report_only_reports(capsys, empty_home):
    """CODE-30: report() used to turn the persistent cache on and write to ~/.cache."""
    before = _flags()
    text = runtime.report()
    assert _flags() == before                      # no configuration changed
    assert list(empty_home.iterdir()) == []        # nothing written under HOME
    assert f"JAX {jax.__version__}" in text and f"backend: {jax.default_backend()}" in text
    assert "compilation cache: off" in text and "x64: False" in text
    assert text in capsys.readouterr().out
    with runtime.float64():
        assert "x64: True" in runtime.report()


def test_report_says_the_cache_is_on_after_it_was_turned_on(tmp_path, empty_home, restore_flags):
    assert runtime.enable_compilation_cache(str(tmp_path / "c")) == str(tmp_path / "c")
    assert "compilation cache: on" in runtime.report()
    jax.config.update("jax_enable_compilation_cache", False)
    assert "compilation cache: off" in runtime.report()


@pytest.mark.parametrize("env", ["off", "OFF", "0", "false", "no"])
def test_the_cache_can_be_turned_off_from_the_environment(tmp_path, empty_home, monkeypatch, env):
    monkeypatch.setenv("MINI_ADV_JAX_CACHE", env)
    before = _flags()
    assert runtime.enable_compilation_cache(str(tmp_path / "c")) is None
    assert runtime.enable_compilation_cache() is None
    assert _flags() == before and not (tmp_path / "c").exists()
    assert list(empty_home.iterdir()) == []


def test_the_cache_directory_is_the_callers_or_the_environments(tmp_path, empty_home, monkeypatch,
                                                                restore_flags):
    got = runtime.enable_compilation_cache("~/.cache/mini_adv/jax", min_compile_secs=0.5)
    assert got == str(empty_home / ".cache" / "mini_adv" / "jax") and os.path.isdir(got)  # ~ expanded
    assert jax.config.jax_compilation_cache_dir == got
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.5
    monkeypatch.setenv("MINI_ADV_JAX_CACHE", str(tmp_path / "override"))
    got = runtime.enable_compilation_cache("~/.cache/mini_adv/jax")
    assert got == str(tmp_path / "override") == runtime.compilation_cache_dir()
    assert jax.config.jax_compilation_cache_dir == got
    with pytest.raises(ValueError, match="min_compile_secs"):
        runtime.enable_compilation_cache(str(tmp_path / "x"), min_compile_secs=-1.0)


def test_compilation_cache_dir_only_computes_a_path(empty_home, monkeypatch):
    assert runtime.compilation_cache_dir() == str(empty_home / ".cache" / "mini_adv" / "jax")
    monkeypatch.setenv("XDG_CACHE_HOME", str(empty_home / "xdg"))
    assert runtime.compilation_cache_dir() == str(empty_home / "xdg" / "mini_adv" / "jax")
    assert list(empty_home.iterdir()) == []


def test_the_persistent_cache_writes_only_in_its_directory(tmp_path):
    """A fresh process (JAX opens the cache once): compiled programs land in the directory
    that MINI_ADV_JAX_CACHE names, instead of the one passed, and nowhere under HOME."""
    script = textwrap.dedent("""
        import sys, jax, jax.numpy as jnp
        from mini_adv import runtime
        print(runtime.enable_compilation_cache("~/.cache/mini_adv/jax", min_compile_secs=0.0))
        jax.block_until_ready(jax.jit(lambda x: jnp.sin(x) @ x.T)(jnp.ones((32, 32))))
    """)
    home, cache = tmp_path / "home", tmp_path / "cache"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "JAX_COMPILATION_CACHE_DIR")}
    env.update(HOME=str(home), MINI_ADV_JAX_CACHE=str(cache))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == str(cache)
    assert any(cache.iterdir())
    assert list(home.iterdir()) == []


def _listening() -> bool:
    from jax._src import monitoring   # JAX's list of duration listeners (no public reader)

    return runtime._on_event in monitoring._event_duration_secs_listeners


def test_count_compilations_nests_and_leaves_no_listener_behind():
    old = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    try:
        assert not _listening()
        with runtime.count_compilations() as outer:
            assert _listening()
            jax.block_until_ready(jax.jit(lambda x: x * 3 + 1)(jnp.ones(13)))
            with runtime.count_compilations() as inner:
                jax.block_until_ready(jax.jit(lambda x: x * 5 - 2)(jnp.ones(13)))
            assert _listening()
        assert not _listening()
        assert inner.count >= 1 and outer.count >= inner.count + 1
        assert outer.seconds >= inner.seconds > 0 and len(outer.durations) == outer.count
        with pytest.raises(RuntimeError):
            with runtime.count_compilations():
                raise RuntimeError("boom")
        assert not _listening()
    finally:
        jax.config.update("jax_enable_compilation_cache", old)


def test_progress_is_silent_in_static_mode(monkeypatch, capsys):
    monkeypatch.setenv("MINI_ADV_STATIC", "1")
    assert list(runtime.progress(range(3), desc="x")) == [0, 1, 2]
    assert capsys.readouterr().err == ""


def draw(fig, v):
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, v])
    ax.set_title(f"v = {v}")


def test_static_slider_embeds_one_frame_per_value(monkeypatch):
    monkeypatch.setenv("MINI_ADV_STATIC", "1")
    html = plotting.slider(draw, [1, 2, 3], label="v")
    assert "<script" in html.data and html.data.count("data:image/png;base64") == 3
    with pytest.raises(ValueError, match="at least one"):
        plotting.slider(draw, [], label="v")


def _frames(html: str) -> list:
    import base64
    import io
    import re

    from PIL import Image

    return [Image.open(io.BytesIO(base64.b64decode(m.replace("\\\n", ""))))
            for m in re.findall(r'"data:image/png;base64,((?:[A-Za-z0-9+/=]|\\\n)+)"', html)]


def test_static_slider_frames_are_palette_pngs_at_the_book_resolution(monkeypatch):
    """Each frame of the kernel-free player is re-encoded as a 256-colour PNG at the book's
    150 dpi (the heaviest page came from its slider frames), and still shows its own value."""
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    monkeypatch.setenv("MINI_ADV_STATIC", "1")
    with plotting.book_style():
        html = plotting.slider(draw, [1, 2, 3], label="v", figsize=(6, 4)).data
        fig = plt.figure(figsize=(6, 4))
        raw = FuncAnimation(fig, lambda i: (fig.clear(), draw(fig, i + 1)) and [], frames=3).to_jshtml()
        plt.close(fig)
    frames = _frames(html)
    assert len(frames) == 3 and len(_frames(raw)) == 3
    assert all(f.mode == "P" and round(f.info["dpi"][0]) == plotting.DPI == 150 for f in frames)
    assert frames[0].size == (6 * 150, 4 * 150)
    assert frames[0].tobytes() != frames[2].tobytes()
    assert len(html) < 0.7 * len(raw), (len(html), len(raw))  # measured: about 0.4


def test_live_slider_is_an_ipywidget_that_redraws(monkeypatch):
    monkeypatch.delenv("MINI_ADV_STATIC", raising=False)
    calls = []
    box = plotting.slider(lambda fig, v: (calls.append(v), draw(fig, v)), [1, 2, 3], label="v")
    control = box.children[0]
    assert control.options == (1, 2, 3) and control.description == "v"
    control.value = 3  # what a reader's drag does
    assert calls == [1, 3]


def test_book_style_is_scoped_and_has_an_opaque_white_background():
    before = dict(matplotlib.rcParams)
    with plotting.book_style():
        assert matplotlib.rcParams["figure.facecolor"] == "white"
        assert matplotlib.rcParams["savefig.transparent"] is False
        assert matplotlib.rcParams["axes.prop_cycle"].by_key()["color"] == plotting.CYCLE
    assert dict(matplotlib.rcParams) == before  # nothing leaks to later figures


def test_palette_png_is_a_256_colour_png_at_the_figure_resolution(agg_figure):
    import io

    from PIL import Image

    assert plotting.palette_png(agg_figure) is None  # an empty figure shows nothing
    agg_figure.set_dpi(150)
    agg_figure.add_subplot().plot([0, 1, 2], [0, 1, 4], label="x²")
    image = Image.open(io.BytesIO(plotting.palette_png(agg_figure)))
    assert image.mode == "P" and round(image.info["dpi"][0]) == 150
    assert 0.8 * 6 * 150 < image.size[0] <= 6 * 150  # the tight box of a 6 in wide figure
