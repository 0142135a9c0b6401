"""GET /openapi.json: a valid document that states what the routes really do."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from metricstream.domain.exports import ExportQuery, ReadingsExportQuery
from metricstream.domain.validation import MetricIn, ReadingIn

# --- GET /openapi.json --------------------------------------------------------------------------

API_PATHS = {
    "/metrics": {"get", "post"},
    "/metrics/{metric_id}": {"get", "delete"},
    "/metrics/readings": {"post"},
    "/metrics/readings/batch": {"post"},
    "/metrics/{metric_id}/readings": {"get"},
    "/readings": {"get"},
    "/healthz": {"get"},
    "/events/watch": {"get"},
    "/dashboard/session": {"get", "post", "delete"},
    "/": {"get"},
    "/dashboard/{name}": {"get"},
    "/-/metrics": {"get"},
    "/openapi.json": {"get"},
    "/api/v2/write": {"post"},
    "/write": {"post"},
    "/v1/metrics": {"post"},
    "/api/v1/write": {"post"},
    "/metrics/export": {"get"},
    "/api/v1/query": {"get", "post"},
    "/api/v1/query_range": {"get", "post"},
    "/api/v1/series": {"get", "post"},
    "/api/v1/labels": {"get", "post"},
    "/api/v1/label/{name}/values": {"get"},
    "/api/v1/metadata": {"get"},
    "/api/v1/status/buildinfo": {"get"},
}


@pytest.fixture
def openapi(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema, or the named component it refers to."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    named: dict[str, Any] = document["components"]["schemas"][ref.removeprefix("#/components/schemas/")]
    return named


def request_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    return resolve(document, body["schema"])


def test_openapi_is_a_valid_openapi_3_document(openapi: dict[str, Any]) -> None:
    from openapi_spec_validator import validate  # dev extra

    assert openapi["openapi"].startswith("3.")
    assert openapi["info"]["title"] == "metricstream"
    validate(openapi)


def refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_openapi_refs_resolve(openapi: dict[str, Any]) -> None:
    schemas = openapi.get("components", {}).get("schemas", {})
    found = list(refs(openapi))
    assert found  # the document does use references
    for ref in found:
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas


def test_openapi_has_every_path_and_method(openapi: dict[str, Any]) -> None:
    methods = {"get", "post", "put", "patch", "delete"}
    documented = {path: set(item) & methods for path, item in openapi["paths"].items()}
    assert documented == API_PATHS


def test_openapi_request_schemas_come_from_the_validating_models(openapi: dict[str, Any]) -> None:
    reading = request_schema(openapi, "/metrics/readings")
    assert reading["properties"] == ReadingIn.model_json_schema()["properties"]
    assert reading["properties"]["value"]["exclusiveMinimum"] == 0
    assert reading["properties"]["value"]["type"] == "number"
    assert reading["properties"]["metric_id"]["format"] == "uuid"
    assert reading["properties"]["metric"]["anyOf"][0]["maxLength"] == 200
    assert reading["required"] == ["value"]
    # the metric by id or by name: exactly one of the two
    assert reading["oneOf"] == [{"required": ["metric_id"]}, {"required": ["metric"]}]

    metric = request_schema(openapi, "/metrics")
    assert metric["properties"] == MetricIn.model_json_schema()["properties"]
    assert metric["properties"]["name"]["minLength"] == 1
    assert metric["properties"]["name"]["maxLength"] == 200
    assert metric["properties"]["input_frequency"]["anyOf"][0]["minimum"] == 0
    assert metric["required"] == ["name"]


def test_openapi_query_parameters(openapi: dict[str, Any]) -> None:
    operation = openapi["paths"]["/metrics/{metric_id}/readings"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert set(parameters) == {"metric_id", *ReadingsExportQuery.model_fields}
    assert parameters["format"]["schema"]["enum"] == ["json", "csv", "arrow", "parquet"]
    assert parameters["metric_id"]["in"] == "path"
    assert parameters["limit"]["schema"]["maximum"] == 10000
    assert parameters["limit"]["schema"]["minimum"] == 1
    assert parameters["limit"]["schema"]["default"] == 1000
    export = openapi["paths"]["/readings"]["get"]
    assert {parameter["name"] for parameter in export["parameters"]} == set(ExportQuery.model_fields)
    listing = openapi["paths"]["/metrics"]["get"]
    assert {parameter["name"] for parameter in listing["parameters"]} >= {"with_readings", "name", "labels"}
    stream = {parameter["name"] for parameter in openapi["paths"]["/events/watch"]["get"]["parameters"]}
    assert stream >= {"types", "metric_id", "labels"}
    metric = openapi["components"]["schemas"]["MetricOut"]["properties"]
    assert set(metric) >= {"labels", "unit", "description"}


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/metrics", "post", {"200", "201", "400", "408", "409", "413", "415", "503"}),
        ("/metrics", "get", {"200", "400", "503"}),
        ("/metrics/{metric_id}", "get", {"200", "400", "404", "503"}),
        ("/metrics/readings", "post", {"201", "400", "404", "413", "415", "503"}),
        ("/metrics/readings/batch", "post", {"201", "400", "404", "413", "415", "503"}),
        ("/metrics/{metric_id}/readings", "get", {"200", "400", "404", "501", "503"}),
        ("/readings", "get", {"200", "400", "501", "503"}),
        ("/healthz", "get", {"200"}),
        ("/-/metrics", "get", {"200"}),
        ("/metrics/export", "get", {"200", "503"}),
        ("/api/v1/write", "post", {"204", "400", "408", "409", "413", "415"}),
        ("/dashboard/{name}", "get", {"200", "304", "404"}),
        ("/events/watch", "get", {"200", "400", "503"}),
        ("/dashboard/session", "get", {"200"}),
        ("/dashboard/session", "post", {"200", "400", "401", "403", "413", "415", "429"}),
        ("/dashboard/session", "delete", {"200", "403"}),
    ],
)
def test_openapi_documents_statuses(
    openapi: dict[str, Any], path: str, method: str, statuses: set[str]
) -> None:
    assert set(openapi["paths"][path][method]["responses"]) >= statuses


def test_openapi_request_bodies_are_required(openapi: dict[str, Any]) -> None:
    operations = [operation for item in openapi["paths"].values() for operation in item.values()]
    bodies = [operation["requestBody"] for operation in operations if "requestBody" in operation]
    # four JSON writes, two of line protocol, one of OTLP, one of remote write, four PromQL forms
    assert len(bodies) == 12
    assert all(body["required"] is True for body in bodies)


@pytest.mark.parametrize("path", ["/metrics/{metric_id}", "/metrics/{metric_id}/readings"])
def test_openapi_metric_id_path_parameter_is_a_uuid(openapi: dict[str, Any], path: str) -> None:
    (parameter,) = [p for p in openapi["paths"][path]["get"]["parameters"] if p["in"] == "path"]
    assert parameter["schema"] == {"type": "string", "format": "uuid"}


def test_openapi_stream_types_is_a_comma_separated_list(openapi: dict[str, Any]) -> None:
    (types,) = [p for p in openapi["paths"]["/events/watch"]["get"]["parameters"] if p["name"] == "types"]
    assert (types["style"], types["explode"]) == ("form", False)
    assert types["schema"]["items"]["enum"] == ["metric_created", "metric_deleted", "metric_reading_created"]


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/metrics", {"x-last-event-id"}),
        ("/metrics/{metric_id}/readings", {"x-last-event-id", "x-truncated", "link", "content-disposition"}),
        ("/readings", {"x-last-event-id", "content-disposition"}),
    ],
)
def test_openapi_lists_are_arrays_with_their_headers(
    openapi: dict[str, Any], path: str, headers: set[str]
) -> None:
    response = openapi["paths"][path]["get"]["responses"]["200"]
    assert resolve(openapi, response["content"]["application/json"]["schema"])["type"] == "array"
    assert {name.lower() for name in response["headers"]} == headers


@pytest.mark.parametrize("path", ["/metrics/{metric_id}/readings", "/readings"])
def test_openapi_documents_the_export_formats(openapi: dict[str, Any], path: str) -> None:
    content = openapi["paths"][path]["get"]["responses"]["200"]["content"]
    assert set(content) == {
        "application/json",
        "text/csv",
        "application/vnd.apache.arrow.stream",
        "application/vnd.apache.parquet",
    }
    assert content["application/vnd.apache.parquet"]["schema"] == {"type": "string", "format": "binary"}
    rows = resolve(openapi, content["application/json"]["schema"])
    if path == "/readings":  # rows in frame()'s columns
        reading, bucket = (set(resolve(openapi, item)["properties"]) for item in rows["items"]["anyOf"])
        metric = {"metric", "metric_id", "labels", "unit", "description"}
        assert reading == {*metric, "timestamp", "value"}
        assert bucket == {*metric, "start", "count", "min", "max", "avg", "first", "last"}


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_every_route_of_the_app_is_documented(openapi: dict[str, Any]) -> None:
    from metricstream.web.application import create_app

    app = create_app()
    routes = {re.sub(r"<(\w+)>", r"{\1}", rule.rule) for rule in app.quart.url_map.iter_rules()}
    outside_quart = {path for _, path in app.routes}  # the stream and the write routes
    assert routes | outside_quart == set(openapi["paths"])


def test_every_operation_is_summarised_in_one_whole_sentence(openapi: dict[str, Any]) -> None:
    for path, method, operation in operations(openapi):
        summary = operation.get("summary", "")
        assert summary, f"{method} {path} has no summary"
        assert summary[0].isupper(), (method, path, summary)
        assert summary.endswith("."), f"{method} {path}: {summary!r} is cut mid-sentence"
        assert len(summary) <= 90, (method, path, summary)
        assert not operation.get("description", "")[:1].islower(), (method, path, operation["description"])


def test_every_body_is_a_named_component(openapi: dict[str, Any]) -> None:
    for path, method, operation in operations(openapi):
        bodies = [operation.get("requestBody", {}), *operation["responses"].values()]
        for body in bodies:
            schema = body.get("content", {}).get("application/json", {}).get("schema")
            if schema is not None and (path, method) != ("/openapi.json", "get"):
                assert set(schema) == {"$ref"}, (method, path, schema)


def test_an_open_server_asks_no_token(openapi: dict[str, Any]) -> None:
    assert set(openapi["components"]["securitySchemes"]) == {"bearer", "access_token", "session"}
    for path, method, operation in operations(openapi):
        assert operation["security"] == [], (method, path)
        assert "429" not in operation["responses"] or path == "/dashboard/session", (method, path)


SECURED_PATHS = {
    ("/metrics", "post"): ["bearer"],
    ("/metrics", "get"): ["bearer", "session"],
    ("/metrics/{metric_id}/readings", "get"): ["bearer", "session"],
    ("/events/watch", "get"): ["bearer", "access_token", "session"],
    ("/-/metrics", "get"): ["bearer"],
    ("/metrics/readings", "post"): ["bearer"],
    ("/metrics/{metric_id}", "delete"): ["bearer"],
    ("/healthz", "get"): [],
    ("/", "get"): [],
    ("/dashboard/session", "post"): [],
}


def test_a_server_with_tokens_documents_them_and_their_refusals(start_hub: Any) -> None:
    hub = start_hub(token="write-token-0123456789abcdef", subscribe_token="read-token-0123456789abcdef")
    document = httpx.get(f"{hub.url}/openapi.json", timeout=10).json()
    for (path, method), schemes in SECURED_PATHS.items():
        operation = document["paths"][path][method]
        assert operation["security"] == [{scheme: []} for scheme in schemes], (method, path)
        if schemes:
            assert {"401", "429"} <= set(operation["responses"]), (method, path)
            assert "Retry-After" in operation["responses"]["429"]["headers"]
    assert "403" not in document["paths"]["/metrics"]["get"]["responses"]  # any Host, with a token


def test_the_host_rule_is_documented_where_it_applies(openapi: dict[str, Any]) -> None:
    for path, method, operation in operations(openapi):
        assert "403" in operation["responses"], (method, path)


def test_openapi_says_when_embedded_readings_are_cut(openapi: dict[str, Any]) -> None:
    listing = openapi["components"]["schemas"]["MetricWithReadingsOut"]["properties"]
    assert listing["readings_truncated"]["anyOf"][0] == {"type": "boolean"}
    operation = openapi["paths"]["/metrics/{metric_id}/readings"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert parameters["order"]["schema"]["enum"] == ["asc", "desc"]
    assert parameters["cursor"]["schema"]["anyOf"][0] == {"type": "string"}
