"""`tp demo`: the handler functions on tiny models, and the Gradio app driven in a real browser (Debian's
chromium through playwright, headless): click on the image -> a description and both markers; edit the text
-> the localizer's new point. The browser test saves a screenshot to test-artifacts/demo.png."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from tiny_point_models import build_tiny_point_models

from talking_points.demo.handlers import (
    DemoModels,
    Settings,
    describe_click,
    localize_text,
    view,
    view_scale,
)
from talking_points.pipeline.metrics.pck import normalised_distance
from talking_points.pipeline.visualize import read_rgb

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("TP_TEST_ARTIFACTS", ROOT / "test-artifacts"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    return build_tiny_point_models(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def models(tiny) -> DemoModels:
    return DemoModels.load(tiny["descriptor"], tiny["localizer"])


def test_click_describes_and_reads_back(models, tiny):
    image = read_rgb(tiny["a"])  # 80 x 48
    answer = describe_click(models, image, 20.0, 30.0, Settings(max_new_tokens=6))
    assert isinstance(answer.text, str) and answer.clicked == (20.0, 30.0)
    px, py = answer.predicted
    assert 0 <= px <= 80 and 0 <= py <= 48
    expected = normalised_distance(np.array([[px, py]]), np.array([[20.0, 30.0]]), 80, 48)[0]
    assert answer.distance == pytest.approx(expected)
    summary = answer.summary()
    assert "clicked** at (20.0, 30.0)" in summary and "`PCK@0.1`" in summary and "`PCK@0.2`" in summary
    # greedy decoding is deterministic; a sampled answer is still a text
    assert describe_click(models, image, 20.0, 30.0, Settings(max_new_tokens=6)).text == answer.text
    assert isinstance(describe_click(models, image, 20.0, 30.0, Settings(sample=True, max_new_tokens=6)).text, str)


def test_edited_text_is_localized_and_bad_input_is_refused(models, tiny):
    image = read_rgb(tiny["b"])
    a = localize_text(models, image, "  the front wheel of the car ", clicked=(5.0, 5.0))
    assert a.text == "the front wheel of the car" and a.clicked == (5.0, 5.0) and a.distance is not None
    b = localize_text(models, image, "the head of the leftmost dog")
    assert b.clicked is None and b.distance is None and "clicked" not in b.summary()
    with pytest.raises(ValueError, match="empty"):
        localize_text(models, image, "   ")
    with pytest.raises(ValueError, match="outside the 80x48 image"):
        describe_click(models, image, 81.0, 3.0)
    with pytest.raises(ValueError, match="no image"):
        describe_click(models, None, 1.0, 1.0)


def test_view_enlarges_and_draws_both_markers(models, tiny):
    image = read_rgb(tiny["a"])
    s = view_scale(image)
    plain = view(image)
    assert plain.shape == (48 * s, 80 * s, 3) and s == int(s) >= 2
    answer = localize_text(models, image, "the tail", clicked=(40.0, 24.0))
    drawn = view(image, answer)
    assert drawn.shape == plain.shape and not np.array_equal(drawn, plain)
    # the clicked marker (green) is at the clicked pixel's place in the enlarged view
    cy, cx = int(24 * s), int(40 * s)
    assert tuple(drawn[cy, cx]) != tuple(plain[cy, cx])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.slow
def test_demo_in_a_real_browser(models, tiny):
    pytest.importorskip("gradio")
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    from talking_points.demo.app import build_app

    port = _free_port()
    app = build_app(models, [str(tiny["a"]), str(tiny["b"])])
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded", timeout=60_000)
            shown = page.locator("#view img")
            shown.wait_for(state="visible", timeout=60_000)
            first_src = shown.get_attribute("src")
            box = shown.bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.5)
            text = page.locator("#description textarea")
            page.wait_for_function("() => document.querySelector('#description textarea').value.length > 0",
                                   timeout=60_000)
            info = page.locator("#info")
            info.get_by_text("localized").wait_for(timeout=60_000)
            assert "clicked" in info.inner_text() and "PCK@0.1" in info.inner_text()
            # the clicked pixel is the one under the mouse: x ≈ 0.25 * 80, y ≈ 0.5 * 48
            clicked = info.inner_text().split("clicked at (")[1].split(")")[0]
            cx, cy = (float(v) for v in clicked.split(","))
            assert abs(cx - 20) <= 1.5 and abs(cy - 24) <= 1.5, clicked
            page.wait_for_function("src => document.querySelector('#view img').src !== src", arg=first_src,
                                   timeout=60_000)
            marked_src = shown.get_attribute("src")
            before = info.inner_text()
            text.fill("The point is on the leftmost dog; on its head; in a dark patch.")
            page.locator("#localize").click()
            page.wait_for_function("old => document.querySelector('#info').innerText !== old", arg=before,
                                   timeout=60_000)
            page.wait_for_function("src => document.querySelector('#view img').src !== src", arg=marked_src,
                                   timeout=60_000)
            assert "localized at" in info.inner_text() and "clicked at" in info.inner_text()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "demo.png"), full_page=True)
            browser.close()
    finally:
        app.close()
    assert (ARTIFACTS / "demo.png").stat().st_size > 10_000
