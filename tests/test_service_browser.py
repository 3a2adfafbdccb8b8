"""The web page in a real headless browser (Debian's chromium through Playwright) against a real server.

Screenshots go to $TOEANGLE_SCREENSHOTS (or pytest's tmp dir) for a person to look at.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra: pip install -e '.[dev]'")
if not Path(CHROMIUM).exists():
    pytest.skip("no chromium: `make test` installs Debian's chromium where apt-get is available (as root)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("TOEANGLE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1100, "height": 1400})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/")
    yield page
    context.close()
    assert not errors, errors


def test_choose_measure_and_see_the_routine(page, marker_photo, shots):
    data, _ = marker_photo
    page.wait_for_selector("#protocol option[value=heel_raise]", state="attached")  # loaded from /v1/protocols
    assert page.locator("#camera").get_attribute("capture") == "environment"
    page.set_input_files("#file", files=[{"name": "foot.jpg", "mimeType": "image/jpeg", "buffer": data}])
    page.select_option("#protocol", "passive_nwb")
    page.select_option("#side", "left")
    page.screenshot(path=str(shots / "1-chosen.png"), full_page=True)
    page.click("#go")
    page.wait_for_selector("#result:not([hidden])")
    page.wait_for_function("document.getElementById('overlay').naturalWidth > 0")
    angle = float(page.text_content("#angle").split()[0])
    assert abs(angle - 38) < 1.5
    assert page.text_content("#verdict") == "restricted"
    assert "grade" in page.text_content("#grade")
    assert page.locator("#exercises li").count() >= 2
    assert page.evaluate("document.getElementById('overlay').naturalWidth") == 480
    page.screenshot(path=str(shots / "2-measured.png"), full_page=True)


def test_drop_a_photo_that_cannot_be_measured(page, real_photos, shots):
    data = real_photos[0].read_bytes()
    page.wait_for_selector("#protocol option[value=heel_raise]", state="attached")
    page.evaluate("""([b64, name]) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, {type: "image/png"}));
        document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
    }""", [base64.b64encode(data).decode(), real_photos[0].name])
    assert "Photo:" in page.text_content("#drop-text")
    page.select_option("#protocol", "weight_bearing")
    page.click("#go")
    page.wait_for_selector("#result:not([hidden])")
    page.wait_for_function("document.getElementById('overlay').naturalWidth > 0")
    verdict = page.text_content("#verdict")
    if verdict == "Cannot measure this photo":  # markers only: no stickers on this photo
        assert page.locator("#reasons li").count() >= 1
        assert page.locator("#routine").is_hidden()
    else:  # a markerless detector measured it
        assert verdict in ("normal", "restricted", "borderline")
    page.screenshot(path=str(shots / "3-dropped.png"), full_page=True)


def test_not_an_image_shows_the_problem(page, shots):
    page.set_input_files("#file", files=[{"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"not a photo" * 40}])
    page.click("#go")
    page.wait_for_selector("#status.error")
    assert "Not an image" in page.text_content("#status")
    assert page.locator("#result").is_hidden()
    page.screenshot(path=str(shots / "4-error.png"), full_page=True)
