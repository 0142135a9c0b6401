"""The use cases: `AsyncMetricService` on the server's loop, `MetricService` (its blocking twin for any
other thread), the queries they page and bucket with, and the demo feed."""
