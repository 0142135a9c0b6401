"""What the tests share that is not a fixture: raw stream reading, HTTP helpers, a fault proxy, the Chromium
launch settings, child processes, stores, subscribers and the npm client. Fixtures stay in conftest.py
files, where pytest finds them; they build on these."""
