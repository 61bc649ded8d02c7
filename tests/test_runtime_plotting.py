import matplotlib
import pytest

matplotlib.use("Agg")

from mini_adv import runtime  # noqa: E402
from mini_adv.figures import style as plotting  # noqa: E402


def test_sizes_pick_the_preset_of_this_backend():
    expected = 2 if runtime.on_accelerator() else 1
    assert runtime.sizes(cpu={"n": 1}, gpu={"n": 2}) == {"n": expected}
    with pytest.raises(ValueError, match="same keys"):
        runtime.sizes(cpu={"n": 1}, gpu={"m": 2})


def test_report_names_backend_and_versions(capsys):
    text = runtime.report()
    assert "backend:" in text and "JAX" in text and "Flax" in text
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
