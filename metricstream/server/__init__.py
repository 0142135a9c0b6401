"""Serving the app on hypercorn: `Hub` in a background thread, `run` in the foreground, TLS and
descriptor limits. The only package that imports hypercorn."""
