"""The REST API's error answers, documented once.

Every refusal the API sends is ``{"code", "message", "extra"}`` (config/api.py renders domain
errors, ninja's own refusals, unknown routes and wrong methods in it); ``ErrorOut`` is that shape in
the OpenAPI schema. An operation's error statuses come from two places:

- those that follow from its shape are added to the generated schema by ``document_errors``: 401,
  403, 429 and 503 for a route that needs a credential (none or a bad one; a key used from another
  address, a scope or role that does not allow it; an address that sent too many bad credentials;
  the failure counters unreachable), 404 for a path that names a record, 400 (a body that is not
  JSON or too large) and 422 (``validation_error``) for a body, 422 for a parameter that can fail
  validation;
- those that come from a route's own logic are declared in its ``response`` mapping with
  ``errors(...)``: 404 for an id looked up from the body, 409 for a state conflict, 422 for a
  business rule, 429 for a rate limit, 503 for a broker or service the route needs.
"""

from __future__ import annotations

from typing import Any

from ninja import Field, Schema


class ErrorOut(Schema):
    code: str = Field(description="What went wrong, for programs: order_not_found, validation_error, a rule's name")
    message: str = Field(description="What went wrong, for people")
    extra: dict[str, Any] = Field(description="Details: the field, the limit, the numbers")


DESCRIPTIONS = {
    400: "The body is not JSON (body_not_json) or too large (body_too_large), or a value is refused",
    401: "No credential, or a bad one (not_authenticated, token_expired, api_key_invalid, ...)",
    403: "The credential's scope, its address or the caller's role does not allow this",
    404: "What the request names does not exist or is out of the caller's reach",
    409: "The order's state does not allow this (order_state_conflict)",
    422: "The request is not valid (validation_error, detail in extra.errors) or a rule refuses it (code names it)",
    429: "Too many requests (locked_out, too_many_failures, orders_per_second)",
    503: "A broker or service the request needs is unavailable (broker_unavailable, rate_limiter_unavailable, "
    "database_unavailable, ...)",
}
_REF = {"$ref": "#/components/schemas/ErrorOut"}


def errors(*statuses: int) -> dict[int, type[ErrorOut]]:
    """Return ``{status: ErrorOut}`` for a route's ``response`` mapping: the statuses its logic answers."""
    return dict.fromkeys(statuses, ErrorOut)


def _can_fail_validation(parameter: dict[str, Any]) -> bool:
    """A parameter ninja can refuse: a required query or header one, or any that is more than a string."""
    schema = parameter.get("schema", {})
    plain_string = schema.get("type") == "string" and not set(schema) - {"type", "title", "default", "description"}
    return (parameter["in"] != "path" and parameter.get("required", False)) or not plain_string


def _shape_statuses(operation: dict[str, Any]) -> set[int]:
    statuses = set()
    parameters = operation.get("parameters", [])
    if operation.get("security"):
        statuses |= {401, 403, 429, 503}
    if any(p["in"] == "path" for p in parameters):
        statuses.add(404)
    if "requestBody" in operation:
        statuses |= {400, 422}
    if any(_can_fail_validation(p) for p in parameters):
        statuses.add(422)
    return statuses


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the error statuses that follow from each operation's shape to a generated OpenAPI schema, all
    referring to the one ``ErrorOut`` component, and describe every error status; return the schema."""
    schema.setdefault("components", {}).setdefault("schemas", {}).setdefault(
        "ErrorOut", ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    content = {"application/json": {"schema": _REF}}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation["responses"]
            for status in _shape_statuses(operation):
                responses.setdefault(status, {"content": content})
            for status, response in responses.items():
                if int(status) >= 400 and response.get("content", {}).get("application/json", {}).get("schema") == _REF:
                    response["description"] = DESCRIPTIONS.get(int(status), response.get("description", ""))
    return schema
