"""`Hub.show()` (display.py) on a hub that is not running. Shown from a running hub, in a fake notebook and
in a terminal: tests/e2e/test_display.py."""

from __future__ import annotations

import pytest

from metricstream.errors import HubError
from metricstream.server.hub import Hub


def test_a_hub_that_is_not_running_cannot_show() -> None:
    hub = Hub(port=0)
    with pytest.raises(HubError, match="not running"):
        hub.show()
