"""Server-Sent Events fan-out: the SSE encoding, the retained event log, the broadcaster. Knows nothing of
HTTP, and of metrics no more than the event types and the metric an event concerns."""
