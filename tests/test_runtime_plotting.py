import jax
import matplotlib
import pytest

matplotlib.use("Agg")

from mini_adv import runtime  # noqa: E402
from mini_adv.figures import style as plotting  # noqa: E402


@pytest.mark.parametrize("backend,expected", [("cpu", 1), ("gpu", 2), ("tpu", 2)])
def test_sizes_pick_the_gpu_preset_on_an_accelerator(monkeypatch, backend, expected):
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    assert runtime.sizes(cpu={"n": 1}, gpu={"n": 2}) == {"n": expected}
    with pytest.raises(ValueError, match="same keys"):
        runtime.sizes(cpu={"n": 1}, gpu={"m": 2})


def test_report_names_this_backend_and_the_versions(capsys):
    import flax

    text = runtime.report(compilation_cache=False)  # no cache written by a test
    assert f"JAX {jax.__version__}" in text and f"Flax {flax.__version__}" in text
    assert f"backend: {jax.default_backend()}" in text and "compilation cache: off" in text
    assert text in capsys.readouterr().out


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
