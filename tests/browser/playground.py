#!/usr/bin/env python3
"""The playground in a real browser: Debian's chromium, headless, driven by chromium-driver
through Selenium, against the real server binary (started by tests/api/playground.rs).

Usage: playground.py open BASE_URL     # a server without a token: every view
       playground.py token BASE_URL    # a server with HUME_ACTION_TOKEN=$PLAYGROUND_TOKEN

Environment: PLAYGROUND_AUDIO, PLAYGROUND_IMAGE, PLAYGROUND_VIDEO (files to upload),
PLAYGROUND_AUDIO_URL (the same recording on a loopback host),
PLAYGROUND_TOKEN, PLAYGROUND_SCREENSHOTS (a directory for the screenshots), CHROMIUM and
CHROMEDRIVER (default /usr/bin/chromium and /usr/bin/chromedriver).

Prints one line per case and "N passed, 0 failed" at the end; exits 1 when a case failed.
"""

import json
import os
import sys
import tempfile
import traceback

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

MODE, BASE = sys.argv[1], sys.argv[2].rstrip("/")
SHOTS = os.environ.get("PLAYGROUND_SCREENSHOTS")
JOB_TIMEOUT = 300

# Records every dialog the page opens, before any of its scripts run.
DIALOG_SPY = """
window.__dialogs = [];
for (const name of ['alert', 'confirm', 'prompt']) {
  const original = window[name];
  window[name] = function (...args) { window.__dialogs.push(name); return original.apply(this, args); };
}
"""

# Pixels of the chart's canvas in its series' colours: lines and points actually drawn.
COLOURED_PIXELS = """
const chart = arguments[0];
const canvas = chart.querySelector('canvas');
if (!canvas) return -1;
const colours = chart.dataset.colours.split(' ').filter(Boolean).map(
  (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let n = 0;
for (let i = 0; i < data.length; i += 4) {
  if (data[i + 3] < 200) continue;
  for (const c of colours) {
    if (Math.abs(data[i] - c[0]) + Math.abs(data[i + 1] - c[1]) + Math.abs(data[i + 2] - c[2]) < 40) { n++; break; }
  }
}
return n;
"""


def browser(width=1440, height=1000):
    options = Options()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        f"--user-data-dir={tempfile.mkdtemp(prefix='playground-chromium-')}",
        f"--window-size={width},{height}",
    ]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.set_capability("unhandledPromptBehavior", "ignore")
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": DIALOG_SPY})
    resize(driver, width, height)
    return driver


def resize(driver, width, height=1000):
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def wait(driver, condition, what, timeout=60):
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda _: condition(), message=what)


def console_problems(driver):
    """Console lines that show a broken page: CSP violations and script errors."""
    lines = [e["message"] for e in driver.get_log("browser")]
    return [m for m in lines if "Content Security Policy" in m or "Uncaught" in m or "TypeError" in m]


def no_dialogs(driver):
    assert driver.execute_script("return window.__dialogs") == [], "a dialog was opened"
    try:
        driver.switch_to.alert
        raise AssertionError("an alert is open")
    except NoAlertPresentException:
        pass


def screenshot(driver, name, width):
    if not SHOTS:
        return
    os.makedirs(SHOTS, exist_ok=True)
    resize(driver, width, 1000)
    wait(driver, lambda: driver.execute_script("return window.innerWidth") == width, "resized", 10)
    height = driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)")
    resize(driver, width, min(max(height, 600), 4000))
    driver.execute_script("window.scrollTo(0, 0)")
    # Charts follow their card's width on the next frames: wait until each one has its size.
    wait(driver, lambda: driver.execute_script(
        "return [...document.querySelectorAll('.chart')].every((c) => !c.uplot"
        " || Math.abs(c.uplot.width - Math.max(260, c.clientWidth - 8)) <= 4)"), "charts resized", 10)
    driver.save_screenshot(os.path.join(SHOTS, f"{name}-{width}.png"))
    resize(driver, width, 1000)


def open_page(driver):
    driver.get(BASE + "/")
    wait(driver, lambda: driver.find_elements(By.ID, "toggle-models_face"), "the toggles from the manifest")


def set_toggles(driver, **wanted):
    for model, on in wanted.items():
        box = driver.find_element(By.ID, f"toggle-models_{model}")
        if box.is_selected() != on:
            box.click()


def start_job(driver, text=None, files=(), urls=(), **toggles):
    """Fills the form, starts the job, waits for its view to show the ended job; returns its id."""
    open_page(driver)
    set_toggles(driver, **toggles)
    if text:
        driver.find_element(By.ID, "text").send_keys(text)
    if urls:
        driver.find_element(By.ID, "urls").send_keys("\n".join(urls))
    if files:
        driver.find_element(By.ID, "files").send_keys("\n".join(files))
        names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#chosen .name")]
        assert names == [os.path.basename(f) for f in files], names
    shown = json.loads(driver.find_element(By.ID, "request-json").get_attribute("textContent"))
    curl = driver.find_element(By.ID, "request-curl").get_attribute("textContent")
    driver.find_element(By.ID, "start-submit").click()
    wait(driver, lambda: "job=" in driver.current_url, "the page opened the new job's view")
    job = driver.current_url.split("job=", 1)[1]
    wait(driver, lambda: driver.find_elements(By.ID, "headline"), f"job {job} ended and its view rendered", JOB_TIMEOUT)
    return job, shown, curl


def headline(driver):
    text = driver.find_element(By.ID, "headline").text
    assert text.strip(), "the headline is empty"
    return text


def drawn_charts(driver):
    """The drawn timeline charts, with the coloured pixels in each."""
    wait(driver, lambda: driver.find_elements(By.CSS_SELECTOR, ".chart.timeline[data-drawn]"), "a timeline chart drawn")
    charts = driver.find_elements(By.CSS_SELECTOR, ".chart.timeline[data-drawn]")
    return [(c, int(c.get_attribute("data-points")), driver.execute_script(COLOURED_PIXELS, c)) for c in charts]


# ------------------------------------------------------------------------------------ cases


def case_text_job(driver):
    text = "Thank you so much, this is wonderful. But the order is late again. I am furious about it."
    job, shown, curl = start_job(driver, text=text, language=True)
    assert shown == {"models": {"prosody": {}, "language": {"granularity": "utterance"}}, "text": [text]}, shown
    assert "/v0/batch/jobs" in curl and "utterance" in curl, curl
    headline(driver)
    (chart, points, pixels), *_ = drawn_charts(driver)
    assert chart.get_attribute("data-model") == "language"
    assert points >= 3, f"{points} data points"
    assert pixels > 30, f"the chart's canvas holds {pixels} pixels of its series"
    sentences = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".sentences .said")]
    assert len(sentences) == 3 and sentences[2] == "I am furious about it.", sentences
    tags = driver.find_elements(By.CSS_SELECTOR, ".sentences .tag")
    assert all(t.text.strip() for t in tags), "each sentence names its top expression"
    assert driver.find_elements(By.CSS_SELECTOR, "#top-bars canvas"), "the top expressions' bar chart"
    # The list shows the job without a reload.
    wait(driver, lambda: driver.find_elements(By.CSS_SELECTOR, f'#job-list li[data-job="{job}"] .badge.completed'),
         "the job listed as completed")
    screenshot(driver, "text-job", 1440)


def case_audio_upload(driver):
    audio = os.environ["PLAYGROUND_AUDIO"]
    job, shown, curl = start_job(driver, files=[audio], language=True, prosody=False)
    assert shown == {"models": {"language": {"granularity": "utterance"}}}, shown
    assert f"file=@{os.path.basename(audio)}" in curl, curl
    headline(driver)
    charts = drawn_charts(driver)
    assert any(points > 0 and pixels > 30 for _, points, pixels in charts), [(p, x) for _, p, x in charts]
    player = driver.find_element(By.CSS_SELECTOR, "audio.player")
    assert player.get_attribute("src").startswith("blob:"), "the dropped file plays from the browser"
    said = " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, ".sentences .said")).lower()
    assert "order" in said and "manager" in said, said
    seek_by_sentence(driver, player)
    screenshot(driver, "audio-upload", 1440)
    screenshot(driver, "audio-upload", 375)
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 375 + 1, "no sideways scroll at 375 px"


def seek_by_sentence(driver, player):
    """Clicks the last sentence of the transcript and checks the player moved to its time."""
    sentences = driver.find_elements(By.CSS_SELECTOR, "button.sentence")
    assert len(sentences) >= 1, "the transcript is listed"
    wait(driver, lambda: driver.execute_script("return arguments[0].readyState >= 1", player), "the media's metadata")
    last = sentences[-1]
    at = float(last.get_attribute("data-time"))
    last.click()
    wait(driver, lambda: driver.execute_script("return arguments[0].currentTime", player) >= at - 0.05,
         "clicking a sentence seeks the media to it", 10)


def case_audio_url(driver):
    url = os.environ["PLAYGROUND_AUDIO_URL"]
    job, shown, curl = start_job(driver, urls=[url], language=True, prosody=False)
    assert shown == {"urls": [url], "models_face": "No", "models_prosody": "No", "models_language": "Yes"}, shown
    assert "/v1/actions/hume-expression-measurement" in curl and url in curl, curl
    headline(driver)
    player = driver.find_element(By.CSS_SELECTOR, "audio.player")
    assert player.get_attribute("src") == url, "a public URL plays from its address"
    seek_by_sentence(driver, player)
    assert driver.find_elements(By.CSS_SELECTOR, ".chart.timeline[data-drawn]"), "a timeline chart"


def case_image_faces(driver):
    image = os.environ["PLAYGROUND_IMAGE"]
    start_job(driver, files=[image], face=True, prosody=False, language=False)
    headline(driver)
    wait(driver, lambda: driver.execute_script(
        "const i = document.querySelector('.face-frame img'); return i && i.complete && i.naturalWidth > 0"),
        "the image shown")
    boxes = wait(driver, lambda: driver.find_elements(By.CSS_SELECTOR, ".face-frame .face-box"), "the face boxes")
    assert len(boxes) == 2, f"{len(boxes)} boxes for the two faces"
    for box in boxes:
        assert box.find_element(By.CSS_SELECTOR, ".face-label").text.strip(), "each box names its top expression"
        assert box.size["width"] > 10 and box.size["height"] > 10, box.size
    screenshot(driver, "image-faces", 1440)
    screenshot(driver, "image-faces", 375)


def case_video_faces(driver):
    video = os.environ["PLAYGROUND_VIDEO"]
    _, shown, _ = start_job(driver, files=[video], face=True, prosody=False, language=False)
    assert shown == {"models": {"face": {"identify_faces": True}}}, shown
    headline(driver)
    assert driver.find_element(By.CSS_SELECTOR, "video.player").get_attribute("src").startswith("blob:")
    rows = wait(driver, lambda: driver.find_elements(By.CSS_SELECTOR, ".face-row"), "rows of faces over time")
    assert [r.get_attribute("data-face") for r in rows] == ["face_0", "face_1"], "one row per person, tracked"
    for row in rows:
        cells = row.find_elements(By.CSS_SELECTOR, ".face-cell")
        assert len(cells) >= 4, f"{len(cells)} frames in a 2 s video sampled at 3 fps"
        assert all(c.get_attribute("aria-label").strip() for c in cells), "each frame names its expression"
    charts = drawn_charts(driver)
    assert any(c.get_attribute("data-model") == "face" and p > 0 and x > 30 for c, p, x in charts)
    screenshot(driver, "video-faces", 1440)


def case_hostile_names_render_as_text(driver):
    folder = tempfile.mkdtemp(prefix="playground-xss-")
    name = "<img src=x onerror=alert(1)>.txt"
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write("I am upset about this. <script>alert(2)</script> Please call me back.")
    start_job(driver, files=[path], language=True, prosody=False)
    headline(driver)
    names = [e.get_attribute("textContent") for e in driver.find_elements(By.CSS_SELECTOR, ".file-name")]
    assert name in names, names
    said = " ".join(e.get_attribute("textContent") for e in driver.find_elements(By.CSS_SELECTOR, ".sentences .said"))
    assert "<script>" in said, said
    assert not driver.find_elements(By.CSS_SELECTOR, "img[src='x'], #view script, [onerror]"), "an element was created"
    assert driver.execute_script("return document.scripts.length") == 2, "only the page's own two scripts"
    # The job list names the file too, as text.
    wait(driver, lambda: any(name in e.get_attribute("textContent")
                             for e in driver.find_elements(By.CSS_SELECTOR, "#job-list .job-name")), "the job listed")
    no_dialogs(driver)


def case_sign_in_prompt(driver):
    driver.get(BASE + "/")
    wait(driver, lambda: driver.find_element(By.ID, "signin").is_displayed(), "the sign-in prompt")
    assert not driver.find_element(By.ID, "workspace").is_displayed(), "no workspace before signing in"
    body = driver.find_element(By.TAG_NAME, "body").text
    assert '{"error"' not in body and "unauthorized" not in body.lower(), body
    token = driver.find_element(By.ID, "token")
    assert driver.execute_script("return document.activeElement === arguments[0]", token), "the token field has focus"
    screenshot(driver, "sign-in", 375)
    token.send_keys(os.environ["PLAYGROUND_TOKEN"])
    driver.find_element(By.ID, "signin-submit").click()
    wait(driver, lambda: driver.find_element(By.ID, "workspace").is_displayed(), "the workspace after signing in")
    wait(driver, lambda: driver.find_elements(By.ID, "toggle-models_prosody"), "the toggles from the manifest")
    assert driver.find_element(By.ID, "toggle-models_prosody").is_selected(), "prosody defaults to Yes"
    assert not driver.find_element(By.ID, "toggle-models_face").is_selected(), "face defaults to No"
    assert driver.execute_script("return sessionStorage.getItem('hume-action.token')") == os.environ["PLAYGROUND_TOKEN"]
    assert driver.execute_script("return localStorage.length") == 0, "nothing kept beyond the session"
    curl = driver.find_element(By.ID, "request-curl").get_attribute("textContent")
    assert "$HUME_ACTION_TOKEN" in curl and os.environ["PLAYGROUND_TOKEN"] not in curl, curl
    # A job started from the signed-in page shows up in its list.
    start_job(driver, text="Hello, this is a short and friendly note.", language=True, prosody=False)
    headline(driver)


CASES = {
    "open": [case_text_job, case_audio_upload, case_audio_url, case_image_faces, case_video_faces, case_hostile_names_render_as_text],
    "token": [case_sign_in_prompt],
}


def main():
    passed = failed = 0
    driver = browser()
    try:
        for case in CASES[MODE]:
            try:
                resize(driver, 1440)
                case(driver)
                problems = console_problems(driver)
                assert not problems, f"console: {problems}"
                passed += 1
                print(f"ok   {case.__name__}", flush=True)
            except Exception:  # noqa: BLE001 -- every failure is reported, then counted
                failed += 1
                print(f"FAIL {case.__name__}\n{traceback.format_exc()}", flush=True)
                try:
                    print("page text:", driver.find_element(By.TAG_NAME, "body").text[:3000])
                    print("console:", [e["message"] for e in driver.get_log("browser")][-20:])
                except Exception:  # noqa: BLE001
                    pass
    finally:
        driver.quit()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
