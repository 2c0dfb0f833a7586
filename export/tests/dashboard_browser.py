# SPDX-License-Identifier: MIT
"""Loads percore's dashboard in headless Chromium (chromium-driver, Selenium)
and checks what a user sees: every chart drawn with points, the rate shown
for one counter equal to the rate two /metrics scrapes give (within 10%), the
picker and the pause button working, no console errors. Saves a screenshot.

Usage: dashboard_browser.py BASE_URL SERIES_ID SCREENSHOT.png
Exit status: 0 pass, 1 fail."""
import shutil
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

DEADLINE = 60  # seconds any wait may take on a loaded machine

base, series, shot = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


def wait(what, cond):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    fail("timed out waiting for " + what)


def scrape(sid):
    """(time, value) of one series in /metrics (text format)."""
    t = time.time()
    text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(sid + " "):
            return t, float(line.split()[1])
    fail(sid + " not in /metrics")


opts = webdriver.ChromeOptions()
opts.binary_location = shutil.which("chromium")
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
          "--window-size=1400,1000", "--hide-scrollbars"):
    opts.add_argument(a)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
try:
    driver.get(base + "/")
    charts = lambda: driver.find_elements(By.CSS_SELECTOR, "canvas.chart")
    points = lambda c: int(c.get_attribute("data-points") or 0)

    # Data arrives, and every chart (rates need two polls) has points.
    wait("every chart to have points", lambda: len(charts()) > 1 and all(points(c) > 0 for c in charts()))
    counts = {c.get_attribute("id") or i: points(c) for i, c in enumerate(charts())}
    print(f"ok   {len(counts)} charts have points: {sorted(counts.values())}")

    # The rate the page shows (averaged over its last 5 s) against the rate
    # of two scrapes 5 s apart, read over the same window.
    # The series id has quotes: find the span by its dataset, not a selector.
    shown_rate = lambda: driver.execute_script(
        "const e = [...document.querySelectorAll('span.rate')].find(e => e.dataset.series === arguments[0]);"
        "return e && e.dataset.rate ? [Number(e.dataset.rate), e.textContent] : null;", series)
    wait("a rate for " + series, shown_rate)
    t0, v0 = scrape(series)
    time.sleep(5)
    t1, v1 = scrape(series)
    shown, text = shown_rate()
    expected = (v1 - v0) / (t1 - t0)
    err = abs(shown - expected) / expected if expected else float("inf")
    print(f"{'ok  ' if err <= 0.10 else 'FAIL'} rate of {series}: page {shown:.1f}/s ('{text}'), "
          f"/metrics {expected:.1f}/s, off by {err:.1%}")
    if err > 0.10:
        sys.exit(1)

    # The picker narrows the page to one family and the per-CPU chart to the
    # picked series.
    Select(driver.find_element(By.ID, "picker")).select_by_value(series)
    family = series.split("{")[0]
    visible = [c.get_attribute("data-family") for c in driver.find_elements(By.CSS_SELECTOR, "section[data-family]")
               if c.is_displayed()]
    if set(visible) != {family}:
        fail(f"picker: visible families {visible}, want only {family}")
    if driver.find_element(By.ID, "cpu-series").text != series:
        fail("picker: per-CPU chart shows " + driver.find_element(By.ID, "cpu-series").text)
    print(f"ok   picker shows only {family}, per-CPU chart of {series}")
    Select(driver.find_element(By.ID, "picker")).select_by_value("")

    # Full-page screenshot.
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(height, 800), 4000) + 150)  # + the window frame
    time.sleep(1.5)  # one more poll draws at the new size (before the pause test leaves a gap)
    driver.save_screenshot(shot)
    print("ok   screenshot " + shot)

    # Pause freezes the charts; resume continues them.
    status = lambda: driver.find_element(By.ID, "status").text
    driver.find_element(By.ID, "pause").click()
    time.sleep(1.5)  # a poll already in flight may still land
    frozen = status()
    time.sleep(2.5)
    if status() != frozen:
        fail(f"pause: status changed from '{frozen}' to '{status()}'")
    driver.find_element(By.ID, "pause").click()
    wait("updates after resume", lambda: status() != frozen)
    print("ok   pause freezes the page, resume continues")

    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    for e in errors:
        print("console: " + e["message"])
    if errors:
        fail(f"{len(errors)} console error(s)")
    print("ok   no console errors")
finally:
    driver.quit()
