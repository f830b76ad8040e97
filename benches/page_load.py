#!/usr/bin/env python3
"""Times the playground in headless chromium (driven by benches/page.rs): from the start of the
navigation until the job list shows its rows, on a first load (empty cache) and on reloads
(everything revalidated with 304s). Prints one JSON object: {"first_ms", "cached_ms": [...]}.

Usage: page_load.py BASE_URL ROWS RELOADS
"""

import json
import os
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

base, rows, reloads = sys.argv[1].rstrip("/"), int(sys.argv[2]), int(sys.argv[3])
options = Options()
options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
for arg in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--window-size=1440,1000",
            f"--user-data-dir={tempfile.mkdtemp(prefix='page-bench-')}"]:
    options.add_argument(arg)
driver = webdriver.Chrome(options=options,
                          service=Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")))

# performance.now() counts from the navigation's start, so this is the time to a rendered list.
LISTED = f"return document.querySelectorAll('#job-list li').length >= {rows} ? performance.now() : null"


def load():
    driver.get(base + "/")
    return WebDriverWait(driver, 60, poll_frequency=0.005).until(lambda d: d.execute_script(LISTED))


try:
    first = load()
    cached = [load() for _ in range(reloads)]
    transferred = driver.execute_script(
        "return performance.getEntriesByType('resource').map((e) => [e.name, e.transferSize, e.responseStatus])")
finally:
    driver.quit()
print(json.dumps({"first_ms": first, "cached_ms": cached, "resources_last_load": transferred}))
