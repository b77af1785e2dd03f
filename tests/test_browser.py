"""The demo page in a real headless Chromium: pick an image, see the people reported and drawn."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from .conftest import MEDIA, need
from .test_serve import LEFT_PLAYER_MAX_X, RIGHT_PLAYER_MIN_X, people_in_bands, running_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def write_y4m(path: Path, image: np.ndarray, frames: int = 5) -> Path:
    """A Y4M video (4:2:0) repeating a BGR image: what Chromium's fake camera plays."""
    h, w = image.shape[:2]
    i420 = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).tobytes()
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + i420)
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium driven by chromedriver, with a fresh profile; its camera films
    basketball1.png."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists() and not shutil.which(path.name):
            pytest.skip(f"{path.name} not installed (Debian packages chromium, chromium-driver)")
    still = cv2.imread(str(need(MEDIA / "basketball1.png")))
    video = write_y4m(tmp_path_factory.mktemp("camera") / "camera.y4m", still)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium"))
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--force-color-profile=srgb",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-video-capture={video}",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver_path = CHROMEDRIVER if CHROMEDRIVER.exists() else shutil.which("chromedriver")
    service = webdriver.ChromeService(executable_path=str(driver_path))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(browser, thin_pb, tmp_path_factory):
    """The demo page of a running server, loaded in the browser."""
    with running_server(tmp_path_factory.mktemp("serve") / "server.log") as port:
        browser.get(f"http://127.0.0.1:{port}/")
        yield browser


def _upload(driver, path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("window.pafpose.last = null; document.getElementById('file').value = ''")
    before = driver.execute_script("return window.pafpose.frames")
    driver.find_element(By.ID, "file").send_keys(str(path))
    WebDriverWait(driver, 120).until(
        lambda d: d.execute_script("return window.pafpose.frames") > before
        or d.find_element(By.ID, "status").get_attribute("class") == "error"
    )


def test_page_reports_and_draws_both_players(page):
    from selenium.webdriver.common.by import By

    path = need(MEDIA / "basketball1.png")
    _upload(page, path)
    status = page.find_element(By.ID, "status")
    assert status.get_attribute("class") != "error", status.text
    result = page.execute_script("return window.pafpose.last")
    count = int(page.find_element(By.ID, "count").text)
    assert count == result["count"] == len(result["people"]) >= 2
    assert people_in_bands(result["people"]) == (True, True)
    assert f"{count} people" in status.text
    # the canvas holds the image with the skeletons drawn over both players
    url = page.execute_script("return document.getElementById('canvas').toDataURL('image/png')")
    png = base64.b64decode(url.split(",", 1)[1])
    canvas = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    original = cv2.imread(str(path))
    assert canvas.shape == original.shape
    changed = np.abs(canvas.astype(int) - original).max(axis=2) > 40
    assert changed[:, :LEFT_PLAYER_MAX_X].sum() > 300
    assert changed[:, RIGHT_PLAYER_MIN_X:].sum() > 300
    assert changed[:, LEFT_PLAYER_MAX_X:RIGHT_PLAYER_MIN_X].sum() < changed.sum() / 2


def test_page_shows_api_error_for_a_non_image(page, tmp_path):
    from selenium.webdriver.common.by import By

    text = tmp_path / "notes.png"
    text.write_text("not an image")
    _upload(page, text)
    status = page.find_element(By.ID, "status")
    assert status.get_attribute("class") == "error"
    assert status.text.startswith("415: not an image")


def test_camera_frames_are_sent_and_drawn_with_fps(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    button = page.find_element(By.ID, "camera")
    assert button.text == "Start camera"
    start = page.execute_script("return window.pafpose.frames")
    button.click()
    try:
        WebDriverWait(page, 120).until(
            lambda d: d.execute_script("return window.pafpose.frames") >= start + 3)
        assert button.text == "Stop camera"
        assert float(page.find_element(By.ID, "fps").text) > 0
        result = page.execute_script("return window.pafpose.last")
        assert result["image"] == {"width": 640, "height": 480}
        assert people_in_bands(result["people"]) == (True, True)
    finally:
        button.click()
    assert button.text == "Start camera"
    assert page.find_element(By.ID, "fps").text == "-"


def test_api_docs_render_without_internet(browser, thin_pb, tmp_path):
    """Swagger UI at /docs draws the API from the server's own files (CI has no internet)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with running_server(tmp_path / "server.log") as port:
        browser.get(f"http://127.0.0.1:{port}/docs")
        WebDriverWait(browser, 60).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
        paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR,
                                                       ".opblock-summary-path")}
        assert {"/v1/pose", "/healthz", "/v1/skeleton"} <= paths
