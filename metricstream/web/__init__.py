"""The ASGI app: every request through the gate (Host, tokens, limits, bodies), then the stream, the write
routes or the Quart routes. The only package that imports Quart."""
