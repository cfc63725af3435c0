"""serve.py's page in a real browser: headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium) on a real server (serve.py in a subprocess on a free
port). A photo gets a labelled box over the face and Grad-CAM on a click; the webcam mode,
fed a video the test writes through Chromium's fake camera, shows labels over the video.

With FERKIT_SCREENSHOT=PATH the photo test saves the page, the face annotated and its
Grad-CAM shown, at PATH; README's figure was made so (RESULTS.md gives the command).
"""
import io
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from ferkit.composites import ASTRONAUT_FACE, astronaut_path
from test_annotate import overlap

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip("Chromium or chromedriver missing (apt-get install chromium chromium-driver)",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow  # a browser and a server process

LABEL = re.compile(r"^(Angry|Disgust|Fear|Happy|Sad|Surprise|Neutral)\*? \d{1,3}%$")
SERVER_START_S = 180  # the models and TensorFlow load first: slow on a busy machine


@pytest.fixture(scope="module")
def server():
    """serve.py on a free port: its address, once it says it is serving."""
    process = subprocess.Popen([sys.executable, str(ROOT / "serve.py"), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = time.monotonic()
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            found = re.search(r"serving on (http://\S+/)", line)
            if found:
                break
            assert time.monotonic() - started < SERVER_START_S, "".join(lines)
        else:
            raise AssertionError(f"serve.py ended: {''.join(lines)}")
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


def write_y4m(path, frames: int = 10) -> None:
    """A 640x480 video of the astronaut, drifting right a pixel a frame (YUV 4:2:0)."""
    picture = cv2.resize(cv2.imread(str(astronaut_path()))[64:448], (640, 480))
    with open(path, "wb") as f:
        f.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for i in range(frames):
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(np.roll(picture, i, axis=1), cv2.COLOR_BGR2YUV_I420).tobytes())


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    video = tmp_path_factory.mktemp("camera") / "astronaut.y4m"
    write_y4m(video)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1100,900", "--use-fake-ui-for-media-stream",
                     "--use-fake-device-for-media-stream",
                     f"--use-file-for-fake-video-capture={video}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, read back
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def labels_shown(driver, selector):
    """The label texts of the face boxes under ``selector``, once there is one. Read in one
    script call: the live view redraws its boxes every frame, so an element found in one
    call can be gone by the next."""
    texts = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText)",
        f"{selector} .face-label")
    return texts if texts and all(texts) else False


def test_a_photo_gets_a_labelled_box_over_the_face_and_gradcam_on_a_click(server, browser):
    browser.get(server)
    browser.find_element(By.ID, "files").send_keys(str(astronaut_path()))
    texts = WebDriverWait(browser, 60).until(lambda d: labels_shown(d, "#results"))
    assert len(texts) == 1 and LABEL.match(texts[0]), texts
    # Where the box is drawn, in the photo's own pixels.
    image = browser.find_element(By.CSS_SELECTOR, "#results img")
    box = browser.find_element(By.CSS_SELECTOR, "#results .face-box")
    scale = 512 / image.rect["width"]
    drawn = ((box.rect["x"] - image.rect["x"]) * scale, (box.rect["y"] - image.rect["y"]) * scale,
             box.rect["width"] * scale, box.rect["height"] * scale)
    assert overlap(drawn, ASTRONAUT_FACE) > 0.5, drawn
    bars = browser.find_elements(By.CSS_SELECTOR, "#results .face-card .bars .fill")
    assert len(bars) == 7
    box.click()
    WebDriverWait(browser, 90).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#results .gradcam img"))
    screenshot = os.environ.get("FERKIT_SCREENSHOT")
    if screenshot:  # 256 colours: a third of the bytes, the page looks the same
        browser.execute_script("window.scrollTo(0, 0)")
        page = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
        page.quantize(colors=256).save(screenshot, optimize=True)


def test_the_webcam_mode_shows_labels_over_the_live_video(server, browser):
    browser.get(server)
    browser.find_element(By.ID, "tab-webcam").click()
    browser.find_element(By.ID, "start").click()
    texts = WebDriverWait(browser, 30).until(lambda d: labels_shown(d, "#live-faces"))
    assert len(texts) == 1 and LABEL.match(texts[0].replace("*", "")), texts
    WebDriverWait(browser, 10).until(
        lambda d: "frames/s" in d.find_element(By.ID, "fps").text)
    # Each tracked face's chart of its last 30 s, beside the video, drawn from five
    # frame's probabilities (lines, not a blank canvas).
    chart = WebDriverWait(browser, 20).until(lambda d: d.execute_script(
        "const c = document.querySelector('#live-bars .face-card canvas.live-chart');"
        "if (!c || Number(c.dataset.points) < 5) return false;"
        "const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let drawn = 0; for (let i = 3; i < px.length; i += 4) drawn += px[i] > 0;"
        "const v = document.getElementById('video').getBoundingClientRect();"
        "const r = c.getBoundingClientRect();"
        "return {drawn, beside: r.left >= v.right - 1 || r.top < v.bottom};"))
    assert chart["drawn"] > 20 and chart["beside"], chart


def contrast(foreground, background) -> float:
    """WCAG's contrast ratio of two CSS 'rgb(r, g, b)' colours (4.5 or more: readable)."""
    def luminance(colour):
        channels = [int(c) / 255 for c in re.findall(r"\d+", colour)[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_page_has_readable_links_a_favicon_and_no_console_errors(server, browser):
    """Last in this file: the console's errors are those of every test above too."""
    browser.get(server)
    link = WebDriverWait(browser, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "footer a"))[0]
    time.sleep(1)  # the favicon's request (/favicon.ico without the page's own) answered
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
    colour, background = browser.execute_script(
        "return [getComputedStyle(arguments[0]).color,"
        " getComputedStyle(document.body).backgroundColor]", link)
    assert contrast(colour, background) >= 4.5, (colour, background)
    icon = browser.find_element(By.CSS_SELECTOR, "link[rel=icon]").get_attribute("href")
    with urllib.request.urlopen(icon, timeout=30) as answer:
        assert answer.status == 200 and answer.headers["content-type"] == "image/svg+xml"
