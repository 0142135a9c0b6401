"""The structured log lines (`web/telemetry.py`): logfmt that a client cannot forge a line through, and one
line per record. The scrape and the stream's log lines through a real server: tests/e2e/test_telemetry.py."""

from __future__ import annotations

import logging
import sys

from metricstream.web.telemetry import LogfmtFormatter, logfmt


def test_logfmt_quotes_what_a_client_could_use_to_forge_a_line() -> None:
    line = logfmt(
        {
            "event": "x",
            "plain": "127.0.0.1:80",
            "rule": "/metrics/<metric_id>",
            "space": "a b",
            "newline": "a\nevent=forged",
            "quote": 'say "hi"',
            "equals": "a=b",
            "backslash": "a\\b",
            "unicode": "é",
            "empty": "",
            "none": None,
            "yes": True,
            "seconds": 1.23456,
            "count": 3,
        }
    )
    assert line == (
        'event=x plain=127.0.0.1:80 rule=/metrics/<metric_id> space="a b" newline="a\\nevent=forged" '
        'quote="say \\"hi\\"" equals="a=b" backslash="a\\\\b" unicode="\\u00e9" empty="" yes=true '
        "seconds=1.235 count=3"
    )


def test_serve_formatter_keeps_every_record_on_one_line() -> None:
    formatter = LogfmtFormatter()
    try:
        raise ValueError("two\nlines")
    except ValueError:
        record = logging.LogRecord(
            "metricstream", logging.ERROR, __file__, 1, "plain %s", ("text",), sys.exc_info()
        )
    line = formatter.format(record)
    assert "\n" not in line
    assert line.startswith("time=")
    assert line.endswith('"')
    assert ' level=error logger=metricstream msg="plain text" exc="Traceback' in line
