import pytest
from django.urls import path
from ninja import NinjaAPI, Schema
from ninja.errors import HttpError, ValidationError

from config.api import on_application_error, on_http_error, on_validation_error
from core.errors import ApplicationError


class Boom(ApplicationError):
    code = "boom"
    status = 409


def test_a_domain_error_renders_code_message_and_extra():
    response = on_application_error(None, Boom("It went boom.", extra={"id": 3}))
    assert response.status_code == 409
    assert response.content == b'{"code": "boom", "message": "It went boom.", "extra": {"id": 3}}'


class Body(Schema):
    quantity: int


test_api = NinjaAPI(urls_namespace="test-errors")
test_api.add_exception_handler(ApplicationError, on_application_error)
test_api.add_exception_handler(ValidationError, on_validation_error)
test_api.add_exception_handler(HttpError, on_http_error)


@test_api.post("/things")
def make_thing(request, body: Body):
    raise Boom("never made", extra={"quantity": body.quantity})


urlpatterns = [path("api-test/", test_api.urls)]


@pytest.mark.urls(__name__)
def test_schema_errors_are_422_in_the_same_shape(client):
    response = client.post("/api-test/things", data={"quantity": "lots"}, content_type="application/json")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error" and body["extra"]["errors"][0]["loc"][-1] == "quantity"


@pytest.mark.urls(__name__)
def test_malformed_json_is_a_400_in_the_same_shape(client):
    response = client.post("/api-test/things", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"code": "body_not_json", "message": "The request body is not valid JSON.", "extra": {}}
