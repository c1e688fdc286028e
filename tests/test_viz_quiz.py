"""``write_steps_html(quiz=True)`` in a real browser: headless Chromium driven by
selenium types right and wrong answers (one number, a whole array, one element)
and reads what the page shows. Skipped only when Chromium or chromedriver is absent."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import Tensor

import viz
from test_viz import leaf, needs_renderer

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             shutil.which("google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("headless Chromium and chromedriver are not installed "
                    "(Debian: apt-get install chromium chromium-driver)")
    from selenium import webdriver  # the test extra: a missing selenium is a failure
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    opts = Options()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1100,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    opts.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    def __init__(self, driver, path):
        from selenium.webdriver.common.by import By
        self.d, self.by = driver, By
        driver.get(path.as_uri())

    def el(self, id_):
        return self.d.find_element(self.by.ID, id_)

    def text(self, id_):
        return self.el(id_).text

    def type(self, id_, text):
        box = self.el(id_)
        box.clear()
        box.send_keys(text)

    def check(self, id_, text):
        self.type(id_, text)
        self.el("check").click()
        return self.text("feedback")

    def next(self):
        self.el("next").click()
        return self.text("question")

    def visible_diagram(self):
        shown = [e.get_attribute("id") for e in
                 self.d.find_elements(self.by.CSS_SELECTOR, "#diagrams > div")
                 if e.is_displayed()]
        assert len(shown) == 1
        return shown[0]


def add_mul():
    x, y, z = leaf(-2.0, "x"), leaf(5.0, "y"), leaf(-4.0, "z")
    q = x + y
    f = q * z
    return f, {"q": q, "f": f}


@needs_renderer
def test_quiz_scalars_right_and_wrong(browser, tmp_path):
    f, names = add_mul()
    path = viz.write_steps_html(f, tmp_path / "quiz.html", names=names, quiz=True)
    page = path.read_text()
    assert "<script src" not in page and re.search(r'(src|href)="https?:', page) is None
    assert f.grad is None  # the page stored nothing
    p = Page(browser, path)
    assert "starts at f" in p.text("question") and p.text("value") == "gradient of f = 1"
    assert p.visible_diagram() == "a0"
    # step 2: q, right (within the tolerance: -4.05 is 1.25% off)
    assert p.next() == "Step 2 of 5: what is the gradient of q?"
    assert p.visible_diagram() == "q1" and p.text("value") == ""  # nothing given away
    assert p.check("answer", "-4.05") == "Right!"
    assert p.text("score") == "Score: 1 right of 1"
    assert p.visible_diagram() == "a1" and p.text("value") == "gradient of q = -4"
    assert "from * (d(a*b)/da = b): -4" in p.text("rules")
    # step 3: z, wrong
    assert "gradient of z?" in p.next()
    assert p.check("answer", "5") == "Not quite: the gradient of z is 3 (you typed 5)."
    assert p.text("score") == "Score: 1 right of 2"
    assert "from * (d(a*b)/db = a): 3" in p.text("rules")
    # 3.1 is more than 2% + 0.5% off 3: wrong; unreadable text is not scored
    p.next()
    assert p.check("answer", "banana").startswith("Expected 1 number, read 0")
    assert p.text("score") == "Score: 1 right of 2"
    assert p.check("answer", "-4") == "Right!"
    assert p.text("score") == "Score: 2 right of 3"
    p.next()
    p.el("reveal").click()  # shown without answering: not scored
    assert p.text("value") == "gradient of x = -4" and p.text("score") == "Score: 2 right of 3"
    assert p.el("next").get_attribute("disabled") == "true"  # the last step


@needs_renderer
def test_quiz_arrays_whole_and_one_element_at_a_time(browser, tmp_path):
    W = Tensor(np.array([[1.0, -2.0], [3.0, 0.5]]), requires_grad=True, name="W")
    v = Tensor(np.array([1.0, 2.0]), name="v")
    h = W @ v
    h.name = "h"
    loss = (h.relu() * np.array([3.0, -1.0])).sum()
    path = viz.write_steps_html(loss, tmp_path / "quiz.html", names={"loss": loss}, quiz=True)
    p = Page(browser, path)
    order = [n for n in tl.backward_order(loss)]
    k = next(i for i, n in enumerate(order) if n is h)
    for _ in range(k):
        question = p.next()
    assert question == f"Step {k + 1} of {len(order)}: what is the gradient of h (shape (2,))?"
    dh = tl.grad(loss, h)  # [0, -1]: relu(h = [-3, 4]) passes h[1] only
    assert p.check("answer", "[0, -1, 7]").startswith("Expected 2 numbers, read 3")
    assert p.check("answer", np.array2string(dh)) == "Right!"  # NumPy's print-out
    assert p.text("value") == "gradient of h = [0, -1]"
    assert "from relu (d relu(x)/dx = 1[x > 0])" in p.text("rules")
    # W: (2, 2), element by element
    question = p.next()
    assert "gradient of W (shape (2, 2))" in question
    p.el("mode-element").click()
    assert p.el("index").get_attribute("value") == "0, 0"
    assert p.check("element-answer", "0").startswith("Right: element [0, 0] of the gradient of W is 0")
    assert p.el("index").get_attribute("value") == "0, 1"  # moves on
    assert p.check("element-answer", "5") == \
        "Not quite: element [0, 1] of the gradient of W is 0 (you typed 5)"
    p.type("index", "1, 1")
    assert p.check("element-answer", "-2").startswith("Right: element [1, 1] of the gradient of W is -2")
    p.type("index", "2, 0")
    assert p.check("element-answer", "1").startswith("The element index must be 2 whole numbers")
    assert p.text("score") == "Score: 3 right of 4"
    p.el("mode-whole").click()
    assert p.check("answer", "[[0, 0], [-1, -2]]") == "Right!"
    browser.save_screenshot(str(tmp_path / "quiz.png"))
    assert (tmp_path / "quiz.png").stat().st_size > 1000
