"""How every browser run here launches Chromium: Debian's `chromium` (apt), headless, driven by Playwright;
never `playwright install`, which downloads a browser of its own. One definition for the dashboard's tests,
benchmarks/dashboard_fps.py and docs/screenshot.py, so what is measured and pictured is what is tested."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
# A host name that does not look like this machine's, for pages that may not frame the dashboard (the
# frame-ancestors tests). It leads to 127.0.0.1, so the browser's Local Network Access rules (a public page
# may not reach a loopback one) stay out of the way of the rule under test.
ELSEWHERE = "notebooks.example"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--host-resolver-rules=MAP {ELSEWHERE} 127.0.0.1",
]
