"""PromQL without I/O: the subset's syntax (`syntax.py`), RE2 patterns run by Python (`regex.py`), range
functions over a series' readings (`windows.py`), operators and aggregations at each step (`vectors.py`),
and the Prometheus API's times and values (`encoding.py`). `service/promql*.py` evaluates over a store."""
