"""The draw-a-digit page in a real browser: Debian's chromium driven by Playwright."""

import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import TIME_FACTOR

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("DIGITNET_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover
    sync_playwright = None
if sync_playwright is None or not shutil.which(CHROMIUM):
    if os.environ.get("CI"):
        pytest.fail("CI must install chromium and playwright (.ci/run does)", pytrace=False)
    pytest.skip("needs playwright and /usr/bin/chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def page_url(mnist_run):
    proc = subprocess.Popen([sys.executable, "-m", "digitnet", "serve", str(mnist_run), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", proc.stdout.readline())
    assert match
    yield f"http://127.0.0.1:{match.group(1)}/"
    proc.terminate()
    proc.wait(timeout=30 * TIME_FACTOR)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def _draw(page, points):
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=10)
    page.mouse.up()


def _bars(page):
    return [float(page.locator(f"#bars li[data-digit='{d}'] .pct").text_content().rstrip("%")) for d in range(10)]


def test_draw_a_seven_and_read_the_answer(browser, page_url, tmp_path):
    page = browser.new_page(viewport={"width": 760, "height": 760})
    page.goto(page_url)
    page.wait_for_function("document.getElementById('model').textContent.includes('recipe best')")
    assert page.locator("#digit").text_content() == "?"
    _draw(page, [(80, 60), (200, 60), (170, 130), (120, 230)])
    page.wait_for_function("document.getElementById('digit').textContent !== '?'")
    page.wait_for_timeout(300)  # let a request sent during the stroke settle
    digit = int(page.locator("#digit").text_content())
    bars = _bars(page)
    assert digit == 7
    assert sum(bars) == pytest.approx(100, abs=0.6) and max(bars) == bars[7] > 50
    assert page.locator("#bars li.top").get_attribute("data-digit") == "7"
    # The prepared 28x28 image is drawn: some pixels of its canvas are bright.
    bright = page.evaluate("""() => {
        const c = document.getElementById('prepared');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++; return n; }""")
    assert bright > 100
    page.screenshot(path=str(tmp_path / "page.png"))
    page.click("#clear")
    assert page.locator("#digit").text_content() == "?" and max(_bars(page)) == 0
    page.close()


def test_draw_a_one(browser, page_url):
    page = browser.new_page(viewport={"width": 760, "height": 760})
    page.goto(page_url)
    _draw(page, [(140, 40), (140, 120), (141, 240)])
    page.wait_for_function("document.getElementById('digit').textContent !== '?'")
    page.wait_for_timeout(300)
    assert page.locator("#digit").text_content() == "1"
    page.close()


def test_write_42_and_read_the_number(browser, page_url):
    page = browser.new_page(viewport={"width": 960, "height": 760})
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(page_url)
    _draw(page, [(120, 50), (70, 160), (200, 160)])  # the 4: a slanted stroke and a bar...
    _draw(page, [(170, 90), (170, 240)])  # ...and its stem, lifted pen in between
    _draw(page, [(290, 80), (330, 50), (390, 70), (390, 120), (290, 230), (420, 230)])  # the 2
    page.wait_for_function("document.getElementById('digit').textContent === '42'", timeout=15000)
    assert errors == []  # no 422 for a lone starting dot, no missing favicon
    page.close()


def test_clear_while_a_request_is_in_flight_leaves_the_pad_empty(browser, page_url):
    page = browser.new_page(viewport={"width": 960, "height": 760})
    page.add_init_script("window.fetch = ((send) => (...args) => "
                         "new Promise((wait) => setTimeout(wait, 500)).then(() => send(...args)))(window.fetch);")
    page.goto(page_url)
    _draw(page, [(140, 40), (140, 120), (141, 240)])
    page.click("#clear")
    page.wait_for_timeout(1500)  # the delayed answer arrives after the Clear
    assert page.locator("#digit").text_content() == "?" and max(_bars(page)) == 0
    page.close()


def test_look_inside_shows_every_layer_and_what_a_unit_looks_for(browser, page_url):
    page = browser.new_page(viewport={"width": 960, "height": 1200})
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(page_url)
    page.click("nav a[href='/inside']")
    page.wait_for_url("**/inside")
    _draw(page, [(140, 30), (140, 120), (141, 250)])  # a 1 on the square pad
    page.wait_for_function("document.querySelectorAll('#layers canvas').length === 3")
    page.wait_for_timeout(300)
    assert page.locator("#digit").text_content() == "1"
    layers = page.evaluate("() => [...document.querySelectorAll('#layers canvas')].map((c) => c.dataset.layer)")
    assert layers == ["hidden 1", "hidden 2", "output"]
    lit = page.evaluate("""() => {  // cells of the first layer drawn in some colour other than black
        const c = document.querySelector('#layers canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 60) n++; return n; }""")
    assert lit > 100
    assert page.locator("#up li").count() >= 1
    first = page.locator("#layers canvas").first
    box = first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.1)
    page.wait_for_function("document.getElementById('unit-weights').dataset.unit !== undefined")
    unit = int(page.locator("#unit-weights").get_attribute("data-unit"))
    assert 0 <= unit < 256 and page.locator("#unit-title").text_content() == f"hidden 1, unit {unit}"
    coloured = page.evaluate("""() => {  // the weight image is red and blue, not blank
        const c = document.getElementById('unit-weights');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let red = 0, blue = 0; for (let i = 0; i < d.length; i += 4) { if (d[i] > d[i + 2] + 40) red++;
            if (d[i + 2] > d[i] + 40) blue++; } return [red, blue]; }""")
    assert min(coloured) > 50
    assert errors == []
    page.close()


@pytest.mark.parametrize("path", ["/", "/inside"])
def test_the_pages_fit_a_phone(browser, page_url, path):
    """A 390 px wide phone screen with touch: nothing wider than the screen, and a finger's strokes
    (touch pointer events) reach the pad."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.goto(page_url.rstrip("/") + path)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    box = page.locator("#pad").bounding_box()
    assert box["width"] <= 390 - 16
    page.evaluate("""([x, y, h]) => {  // a vertical finger stroke: a 1
        const pad = document.getElementById('pad');
        const fire = (type, dy) => pad.dispatchEvent(new PointerEvent(type, {pointerId: 7, pointerType: 'touch',
            isPrimary: true, bubbles: true, clientX: x, clientY: y + dy}));
        fire('pointerdown', 0);
        for (let k = 1; k <= 20; k++) fire('pointermove', k * h / 20);
        fire('pointerup', h);
    }""", [box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.15, box["height"] * 0.7])
    page.wait_for_function("document.getElementById('digit').textContent !== '?'")
    page.wait_for_timeout(500)  # the answer to the whole stroke follows the one sent during it
    assert page.locator("#digit").text_content() == "1"
    if path == "/inside":
        page.wait_for_function("document.querySelectorAll('#layers canvas').length === 3")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    context.close()
