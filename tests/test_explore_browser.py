"""The explorer page in a real browser: Playwright for Python driving Debian's Chromium.

Needs ``apt-get install chromium`` (the browser at /usr/bin/chromium) and ``pip install
playwright``; Playwright is pointed at that browser and never downloads one.  Without
them these tests skip locally and fail under ``CI=1`` (``.ci/run`` installs Chromium).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import REPO, ctrl_c_enabled

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
INSTALL = ("install Debian's Chromium (`apt-get update && apt-get install -y chromium`) and Playwright for Python "
           "(`pip install playwright`; no `playwright install`, the system browser is used)")


def _requirements():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return f"playwright is not installed: {INSTALL}"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found: {INSTALL}"
    return None


@pytest.fixture(scope="module")
def browser():
    missing = _requirements()
    if missing:
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory, browser):
    """Pages for an MLP and a CNN on the 8×8 digits, with the models they show."""
    pytest.importorskip("torch")
    from tinygrad_mnist.data import load_digits
    from tinygrad_mnist.explore import generate, make_model, write_page

    _, test = load_digits()
    out = {}
    for name in ("mlp", "small-cnn"):
        em = make_model(name, image_shape=test.image_shape, seed=0)
        data = generate(em, test, [0, 1], timing_batch=16, repeats=1)
        path = write_page(data, tmp_path_factory.mktemp(name))
        out[name] = (em, data, path)
    return out


class Page:
    """A loaded page and the errors it reported."""

    def __init__(self, browser, url):
        self.page = browser.new_page(viewport={"width": 1366, "height": 800})
        self.errors = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)
        self.page.wait_for_selector("body[data-ready='1']", timeout=15000)

    def step(self):
        t = self.page.locator("#step-title")
        return int(t.get_attribute("data-step")), int(t.get_attribute("data-layer")), t.get_attribute("data-type")

    def value(self, selector):
        return float(self.page.locator(selector).get_attribute("data-value"))

    def text(self, selector):
        return self.page.locator(selector).inner_text()


def shown_number(text):
    return float(text.strip().split()[0])


@pytest.mark.parametrize("name", ["mlp", "small-cnn"])
def test_page_loads_without_errors_and_lists_the_layers(browser, pages, name):
    em, data, path = pages[name]
    page = Page(browser, path.as_uri())
    try:
        types = page.page.locator("#layer-list li.layer").evaluate_all("els => els.map(e => e.dataset.type)")
        assert types == [type(m).__name__ for m in em.model] + ["loss"]
        assert page.page.locator("#layer-table tbody tr").count() == len(em.model) + 1
        assert page.page.locator(".example-btn").count() == len(data["examples"])
        assert page.errors == []
    finally:
        page.page.close()


@pytest.mark.parametrize("name", ["mlp", "small-cnn"])
def test_next_and_previous_visit_every_layer_with_the_json_differences(browser, pages, name, tmp_path):
    em, data, path = pages[name]
    steps = data["examples"][0]["steps"]
    K = len(em.model)
    page = Page(browser, path.as_uri())
    try:
        assert page.page.locator("#prev").is_disabled()
        seen = []
        for s, st in enumerate(steps):
            index, layer, kind = page.step()
            assert (index, layer) == (s + 1, st["layer"])                # steps count from 1
            assert kind == ("loss" if layer == 0 else type(em.model[layer - 1]).__name__)
            for key in ("abs", "rel"):
                json_value = st["diff"][f"max_{key}"]
                assert page.value(f"#diff-{key}") == json_value
                assert shown_number(page.text(f"#diff-{key}")) == pytest.approx(json_value, rel=5e-3, abs=0)
            jac = page.page.locator("#jacobian-fig")
            assert jac.get_attribute("data-shape") == ",".join(map(str, st["jac"]["shape"]))
            seen.append(layer)
            if s == 0:
                page.page.screenshot(path=str(tmp_path / f"{name}-first.png"))
            if s < len(steps) - 1:
                page.page.click("#next")
        assert seen == [0] + list(range(K, 0, -1))
        assert page.page.locator("#next").is_disabled()
        page.page.screenshot(path=str(tmp_path / f"{name}-last.png"), full_page=True)
        page.page.keyboard.press("ArrowRight")                       # stays on the last step
        assert page.step()[0] == len(steps)
        for s in range(len(steps) - 1, 0, -1):                       # back with the keyboard ...
            page.page.keyboard.press("ArrowLeft")
            assert page.step()[:2] == (s, steps[s - 1]["layer"])
        page.page.keyboard.press("End")
        page.page.click("#prev")                                     # ... and the button
        assert page.step()[:2] == (len(steps) - 1, steps[-2]["layer"])
        page.page.keyboard.press("2")                                # the second example
        assert page.value("#loss-value") == data["examples"][1]["loss"]
        assert page.value("#diff-abs") == data["examples"][1]["steps"][-2]["diff"]["max_abs"]
        assert page.errors == []
    finally:
        page.page.close()
    for which in ("first", "last"):
        shot = tmp_path / f"{name}-{which}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_screenshot_of_a_step(browser, pages, tmp_path):
    from PIL import Image

    from tinygrad_mnist.explore import screenshot

    png = screenshot(pages["mlp"][2], tmp_path / "step.png", step=3, width=1200, browser=browser)
    with Image.open(png) as im:
        assert im.width == 1200 and 600 < im.height < 3000


def test_untrained_weights_show_a_banner_and_trained_ones_do_not(browser, pages, tmp_path):
    from tinygrad_mnist.explore import read_page_data, write_page

    _, data, path = pages["mlp"]
    assert data["model"]["trained"] is False
    page = Page(browser, path.as_uri())
    try:
        banner = page.page.locator("#untrained-banner")
        assert banner.is_visible()
        assert "Untrained weights: the prediction is chance" in banner.inner_text()
        assert "untrained: chance" in page.text("#summary")
    finally:
        page.page.close()
    trained = dict(read_page_data(path), model=dict(data["model"], trained=True))
    page = Page(browser, write_page(trained, tmp_path).as_uri())
    try:
        assert not page.page.locator("#untrained-banner").is_visible()
        assert "untrained" not in page.text("#summary")
        assert page.errors == []
    finally:
        page.page.close()


def test_step_numbers_agree_in_the_url_the_page_and_the_command(browser, pages, tmp_path, monkeypatch):
    """Step N (1-based: step 1 is the loss) is "#step=N" in the URL, "Step N of S" on the page and --step N."""
    import tinygrad_mnist.explore as explore
    from tinygrad_mnist.cli import main
    from tinygrad_mnist.explore import page_url

    em, data, path = pages["mlp"]
    S = len(em.model) + 1
    page = Page(browser, page_url(path, step=3, example=2))
    try:
        assert page.step()[:2] == (3, data["examples"][1]["steps"][2]["layer"])
        assert page.text("#step-title").startswith(f"Step 3 of {S}:")
        assert page.page.locator(".example-btn.active").get_attribute("data-example") == "1"   # the second
        page.page.click("#next")
        assert page.page.evaluate("location.hash") == "#step=4&example=2"
        assert page.text("#step-title").startswith(f"Step 4 of {S}:")
        page.page.keyboard.press("Home")
        assert page.page.evaluate("location.hash") == "#step=1&example=2" and page.step()[2] == "loss"
        page.page.evaluate("location.hash = '#step=2&example=1'")       # typing a URL moves the page
        page.page.wait_for_function("document.getElementById('step-title').dataset.step === '2'")
        assert page.page.locator(".example-btn.active").get_attribute("data-example") == "0"
        # the key hint names as many examples as there are
        keys = page.text("#keys")
        assert "1–2" in keys and "of 2 examples" in keys and "9" not in keys
        assert page.errors == []
    finally:
        page.page.close()
    # --step N of the command screenshots the page at "#step=N"
    shots = []
    real = explore.screenshot

    def spy(html, png, step=1, **kw):
        shots.append(step)
        return real(html, png, step=step, browser=browser, **kw)

    monkeypatch.setattr(explore, "screenshot", spy)
    out = tmp_path / "cli"
    assert main(["explore", "--dataset", "digits", "--model", "deep-mlp", "--train-images", "0", "--examples", "0",
                 "--timing-batch", "0", "--out", str(out), "--screenshot", str(tmp_path / "s.png"), "--step", "3"]) == 0
    assert shots == [3]
    page = Page(browser, page_url(out / "index.html", step=3))
    try:
        assert page.text("#step-title").startswith(f"Step 3 of {S}: layer {len(em.model) - 1}")
    finally:
        page.page.close()
    with pytest.raises(ValueError, match="count from 1"):
        page_url(path, step=0)
    assert main(["explore", "--dataset", "digits", "--train-images", "0", "--examples", "0", "--timing-batch", "0",
                 "--out", str(out), "--screenshot", str(tmp_path / "t.png"), "--step", "0"]) == 1


EXPECTED = {"loss": ["p − y", "g</b> = ∂L/∂L = 1"], "Linear": ["J = W", "weight matrix"], "Tanh": ["diagonal"],
            "ReLU": ["diagonal", "active"], "Conv2d": ["sparse", "block of J"], "MaxPool2d": ["selection matrix"],
            "Flatten": ["identity"]}


@pytest.mark.parametrize("name", ["mlp", "small-cnn"])
def test_every_step_says_what_g_j_and_jtg_are_laid_out_as_the_formula(browser, pages, name):
    em, data, path = pages[name]
    page = Page(browser, path.as_uri())
    try:
        for s in range(len(em.model) + 1):
            kind = page.step()[2]
            box = page.page.locator("#step-explain")
            assert box.get_attribute("data-type") == kind
            html, text = box.inner_html(), box.inner_text()
            assert "local derivative" in text and "passes down" in text
            if kind != "loss":
                assert "arrives from the layer above" in text
            for phrase in EXPECTED[kind]:
                assert phrase in (html if "<" in phrase else text), (kind, phrase)
            # Jᵀ [J] · g = Jᵀg, in that order
            order = page.page.evaluate("""[...document.getElementById('formula-row').children]
                .map(c => c.id || c.textContent.trim())""")
            assert order == ["JT", "jacobian-fig", "·", "g-fig", "=", "jtg-fig"]
            # vectors are bar charts, one bar per value; no "values in rows of"
            for fig, tensor in (("#g-fig", data["examples"][0]["grads"][data["examples"][0]["steps"][s]["layer"]]),
                                ("#jtg-fig", data["examples"][0]["grads"][data["examples"][0]["steps"][s]["in"]])):
                if kind != "loss" or fig == "#jtg-fig":
                    if len(tensor["shape"]) == 1:
                        assert page.page.locator(f"{fig} svg rect.bar").count() == tensor["shape"][0]
            assert "values in rows of" not in page.text("#backward-card")
            page.page.keyboard.press("ArrowRight")
        assert page.errors == []
    finally:
        page.page.close()


def tiny_idx_dir(path, size=8, n=6):
    """An MNIST-layout IDX folder of ``n`` random ``size``×``size`` images per split."""
    import numpy as np

    from tinygrad_mnist.data.idx import write_idx

    rng = np.random.default_rng(0)
    path.mkdir()
    for split in ("train", "t10k"):
        write_idx(path / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, size, size), dtype=np.uint8))
        write_idx(path / f"{split}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 10)
    return path


def test_served_page_answers_on_localhost_and_the_server_stops(browser, tmp_path):
    pytest.importorskip("torch")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    data_dir = tiny_idx_dir(tmp_path / "idx")
    cmd = [sys.executable, "-m", "tinygrad_mnist", "explore", "--dataset", str(data_dir), "--model", "small-cnn",
           "--examples", "0", "--timing-batch", "4", "--repeats", "1", "--out", str(tmp_path / "page"),
           "--serve", "--port", "0"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=ctrl_c_enabled)
    try:
        url, lines = None, []
        for line in proc.stdout:
            lines.append(line)
            m = re.search(r"serving (http://127\.0\.0\.1:\d+/)index\.html", line)
            if m:
                url = m.group(1)
                break
        assert url, "".join(lines)
        with urllib.request.urlopen(url + "index.html", timeout=10) as response:
            assert response.status == 200
        page = Page(browser, url + "index.html")
        try:
            assert page.page.locator("#layer-list li.layer").count() == 8
            assert page.errors == []
        finally:
            page.page.close()
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, rest
        assert "server stopped" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "index.html", timeout=2)
