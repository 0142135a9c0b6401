"""docs/grafana/: the data source provisioning files parse as Grafana reads them (YAML for provisioning,
JSON for its HTTP API), say the same, and point at the address and routes docs/grafana.md documents."""

from __future__ import annotations

import json
from typing import Any

import yaml

from metricstream.web.prometheus import PROMETHEUS_VERSION
from tests.support.markdown import DOCS

GRAFANA = DOCS / "grafana"


def _provisioned() -> dict[str, Any]:
    document = yaml.safe_load((GRAFANA / "datasource.yaml").read_text(encoding="utf-8"))
    assert document["apiVersion"] == 1
    (source,) = document["datasources"]
    return dict(source)


def test_the_provisioning_file_is_a_prometheus_data_source_at_the_documented_address() -> None:
    source = _provisioned()
    assert source["type"] == "prometheus"  # Grafana's built-in data source: no plugin
    assert source["access"] == "proxy"
    assert source["url"] == "http://127.0.0.1:8089"  # metricstream serve's address; /api/v1 is below it
    assert source["url"] in (DOCS / "grafana.md").read_text(encoding="utf-8")
    assert source["jsonData"]["prometheusVersion"] == PROMETHEUS_VERSION
    assert source["jsonData"]["httpMethod"] in ("GET", "POST")
    assert source["jsonData"]["httpHeaderName1"] == "Authorization"
    assert source["secureJsonData"]["httpHeaderValue1"].startswith("Bearer ")


def test_the_json_for_grafana_s_http_api_says_the_same() -> None:
    source = json.loads((GRAFANA / "datasource.json").read_text(encoding="utf-8"))
    provisioned = _provisioned()
    for key in ("name", "type", "access", "url", "jsonData"):
        assert source[key] == provisioned[key], key
    assert source["secureJsonData"]["httpHeaderValue1"].startswith("Bearer ")
