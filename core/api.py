"""The conventions every API endpoint follows.

- **Envelope.** A success is `{"ok": true, "data": ...}`; a paginated list's data is
  `{count, next, previous, results}`. A failure is
  `{"ok": false, "error": {"code": ..., "message": ..., "fields": {field: [messages]}}}`.
  Views return plain data; `EnvelopeJSONRenderer` wraps it and `exception_handler` shapes errors,
  so no view builds an envelope by hand.
- **Errors name the field.** A bad parameter is a 400 whose `fields` holds the parameter's name and
  whose `message` repeats it in words.
- **Pagination.** `limit`/`offset`; a limit or offset out of range is a 400, never silently clamped.
- **Unknown fields are refused.** A request body's serializer derives from `BodySerializer`: a field
  it does not declare is a 400 naming it ("Unknown field."), never dropped. Query parameters are
  not held to this: a filter, `limit`/`offset` and `format` are read, anything else is ignored.
- **Every answer under /api/ is the API's own.** Django's own errors (no such path, an id that is
  not a whole number, a request with more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields, an
  unexpected exception) come back in the error envelope as JSON too: `exception_handler` turns
  Django's SuspiciousOperation into a 400, and `handler400/403/404/500` (cryptosatx/urls.py)
  answer JSON under /api/ and Django's HTML pages elsewhere (so does `csrf_failure`, the
  CSRF_FAILURE_VIEW). Object ids are whole numbers in the routes (`ApiRouter`), so
  `/api/scans/abc/` is a 404 before any view runs. Not yet: GET /api/health answers its own report
  (read by probes), and its 405 for another method is Django's.
- **Schema.** `EnvelopeAutoSchema` documents the envelope around every response, and the error
  envelope for every status an operation can answer: 400 (invalid input, or a malformed request),
  401 and 403 (authentication and permission, on authenticated operations), 404 (for one
  object), 429 (throttled), besides the operation's own (202, 204, 409, ...). A method a path does
  not allow is a 405 in the envelope; it is no operation's, so the schema does not list it.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import csrf, defaults
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.compat import SHORT_SEPARATORS
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

# This module is imported while rest_framework.views is being imported (it holds the default
# renderer), so nothing here may import rest_framework.views, .generics, .routers or
# drf_spectacular.openapi at module level: they are imported where they are used, and the two
# classes built on them (EnvelopeAutoSchema, ApiRouter) are made on first use (__getattr__ below).

logger = logging.getLogger(__name__)

NON_FIELD = api_settings.NON_FIELD_ERRORS_KEY


class BadRequest(exceptions.APIException):
    """400 for a request Django refuses before any field is read (SuspiciousOperation)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "The request is malformed."
    default_code = "bad_request"


class Conflict(exceptions.APIException):
    """409: the request is valid but clashes with the current state (e.g. a scan already runs)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


# --- error format --------------------------------------------------------------------------------


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """{"coins": {0: ["bad"]}} → {"coins.0": ["bad"]}; every leaf a list of strings."""
    if isinstance(detail, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = str(key) if not prefix else f"{prefix}.{key}"
            if prefix and key == NON_FIELD:
                name = prefix
            for field, messages in _flatten(value, name).items():
                flat.setdefault(field, []).extend(messages)
        return flat
    if isinstance(detail, list | tuple):
        if any(isinstance(item, Mapping | list | tuple) for item in detail):
            flat = {}
            for index, item in enumerate(detail):
                if not item:
                    continue
                name = f"{prefix}.{index}" if prefix else str(index)
                for field, messages in _flatten(item, name).items():
                    flat.setdefault(field, []).extend(messages)
            return flat
        return {prefix or NON_FIELD: [str(item) for item in detail]}
    return {prefix or NON_FIELD: [str(detail)]}


def _first_code(detail: Any, default: str) -> str:
    if isinstance(detail, exceptions.ErrorDetail):
        return detail.code or default
    if isinstance(detail, Mapping):
        detail = list(detail.values())
    if isinstance(detail, list | tuple):
        for item in detail:
            code = _first_code(item, "")
            if code:
                return code
    return default


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict:
    return {"ok": False, "error": {"code": code, "message": message, "fields": fields or {}}}


def validation_error_body(detail: Any) -> dict:
    """The error envelope of a 400 with field messages; the message names every field."""
    fields = _flatten(detail)
    parts = []
    for field, messages in fields.items():
        text = " ".join(messages)
        parts.append(text if field == NON_FIELD else f"{field}: {text}")
    fields.pop(NON_FIELD, None)  # said in the message; `fields` is for the request's fields
    return error_body("invalid", "; ".join(parts) or "Invalid input.", fields)


def _django_validation_detail(exc: DjangoValidationError) -> Any:
    if hasattr(exc, "error_dict"):
        return exc.message_dict
    return {NON_FIELD: exc.messages}


def suspicious_operation_error(exc: SuspiciousOperation) -> BadRequest:
    """Django's refusal of a request (too many fields, too big, ...) as a 400 saying which limit.

    Logged to `django.security.<name>` like Django does for the requests it refuses itself."""
    logging.getLogger(f"django.security.{type(exc).__name__}").error(str(exc))
    return _suspicious_operation_error(exc)


def _suspicious_operation_error(exc: SuspiciousOperation) -> BadRequest:
    if isinstance(exc, TooManyFieldsSent):
        return BadRequest(
            f"Too many fields: at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} query parameters "
            "and form fields per request.",
            code="too_many_fields",
        )
    if isinstance(exc, RequestDataTooBig):
        return BadRequest(
            f"The request body is too large: at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
            code="too_large",
        )
    return BadRequest()


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, then the error envelope; Django's ValidationError from a service is a 400,
    and so is Django's SuspiciousOperation (raised while DRF reads the query or the body)."""
    from rest_framework.views import exception_handler as drf_exception_handler
    from rest_framework.views import set_rollback

    if isinstance(exc, SuspiciousOperation):
        exc = suspicious_operation_error(exc)
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_django_validation_detail(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if response is None:
        # An unexpected error: logged and reported like Django does (the test client re-raises it),
        # answered in the envelope so API clients never have to parse an HTML error page.
        request = context.get("request")
        logger.error("Unhandled API error", exc_info=exc)
        signals.got_request_exception.send(sender=None, request=getattr(request, "_request", None))
        set_rollback()
        return Response(
            error_body("server_error", "A server error occurred."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        response.data = validation_error_body(exc.detail)
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        if isinstance(detail, list | dict):
            body = validation_error_body(detail)
            body["error"]["code"] = _first_code(detail, exc.default_code)
            response.data = body
        else:
            response.data = error_body(detail.code or exc.default_code, str(detail))
    return response


# --- Django's own errors under /api/ ----------------------------------------------------------


def is_api_path(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def _api_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def handler400(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400 (a SuspiciousOperation outside a DRF view; Django has logged it)."""
    if not is_api_path(request):
        return defaults.bad_request(request, exception)
    error = (
        _suspicious_operation_error(exception)
        if isinstance(exception, SuspiciousOperation)
        else BadRequest()
    )
    return _api_error(400, error.detail.code, str(error.detail))


def handler403(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 403 (PermissionDenied outside a DRF view)."""
    if not is_api_path(request):
        return defaults.permission_denied(request, exception)
    return _api_error(
        403, "permission_denied", "You do not have permission to perform this action."
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a POST without a CSRF token to a plain Django view (not DRF's)."""
    if not is_api_path(request):
        return csrf.csrf_failure(request, reason)
    return _api_error(403, "csrf_failed", f"CSRF verification failed: {reason}")


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404: no route matched (an unknown path, or an id that is not a whole number)."""
    if not is_api_path(request):
        return defaults.page_not_found(request, exception)
    return _api_error(
        404,
        "not_found",
        f"Nothing at {request.path}: no such endpoint, or an id that is not a whole number.",
    )


def handler500(request: HttpRequest) -> HttpResponse:
    """Django's 500: an exception outside DRF's handler (Django has logged and reported it)."""
    if not is_api_path(request):
        return defaults.server_error(request)
    return _api_error(500, "server_error", "A server error occurred.")


# --- request bodies --------------------------------------------------------------------------


class BodySerializer(serializers.Serializer):
    """A request body: a field the serializer does not declare is a 400 naming it ("Unknown
    field."), reported together with the declared fields' own errors. `{"name": "x", "symbols":
    [...]}` to an endpoint that takes `coins` would otherwise create a watchlist without coins."""

    unknown_field_message = "Unknown field."
    # Sent with every form of the browsable API; Django's CSRF check reads it, not the endpoint.
    form_fields = frozenset({"csrfmiddlewaretoken"})

    def to_internal_value(self, data: Any) -> Any:
        unknown: dict[str, list[str]] = {}
        if isinstance(data, Mapping):
            known = {name for name, field in self.fields.items() if not field.read_only}
            known |= self.form_fields
            unknown = {str(key): [self.unknown_field_message] for key in data if key not in known}
        try:
            value = super().to_internal_value(data)
        except exceptions.ValidationError as error:
            if unknown and isinstance(error.detail, Mapping):
                raise exceptions.ValidationError({**unknown, **error.detail}) from error
            raise
        if unknown:
            raise exceptions.ValidationError(unknown)
        return value


# --- the envelope on the wire --------------------------------------------------------------------


class RenderedJSON:
    """A value already encoded as `EnvelopeJSONRenderer` encodes it (compact, the same encoder),
    e.g. a cached page's rows: put in an answer's data (as the value of a dict, at any depth of
    dicts), the renderer writes the text in place unchanged instead of encoding the value again.
    Make one with `RenderedJSON.of(value)`; it pickles as its text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    @classmethod
    def of(cls, value: Any) -> RenderedJSON:
        text = json.dumps(
            value,
            cls=EnvelopeJSONRenderer.encoder_class,
            ensure_ascii=EnvelopeJSONRenderer.ensure_ascii,
            allow_nan=not EnvelopeJSONRenderer.strict,
            separators=SHORT_SEPARATORS,
        )
        # As JSONRenderer does to its whole output (a strict JavaScript subset).
        return cls(text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))

    def __getstate__(self) -> str:
        return self.text

    def __setstate__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RenderedJSON) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def _put_rendered(value: Any, markers: dict[str, str] | None) -> Any:
    """`value` with every RenderedJSON among its dicts' values replaced: by a unique marker string
    (noted in `markers`, to be swapped for the text) or, with markers None, by its value decoded
    again (an answer asked for indented, whose text would differ)."""
    if isinstance(value, RenderedJSON):
        if markers is None:
            return json.loads(value.text)
        marker = f"rendered-json-{uuid.uuid4().hex}"
        markers[marker] = value.text
        return marker
    if isinstance(value, dict):
        return {key: _put_rendered(item, markers) for key, item in value.items()}
    return value


class EnvelopeJSONRenderer(JSONRenderer):
    """JSON in the envelope: success data wrapped, an error left as the handler shaped it; a
    RenderedJSON in the data written as its text."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping | None = None,
    ) -> bytes:
        response = (renderer_context or {}).get("response")
        status_code = response.status_code if response is not None else 200
        if status_code == status.HTTP_204_NO_CONTENT:
            return b""
        if status_code >= 400:
            if not (isinstance(data, dict) and data.get("ok") is False and "error" in data):
                # An error response built without the handler (e.g. a view's own Response).
                data = (
                    validation_error_body(data)
                    if isinstance(data, dict | list)
                    else error_body("error", str(data))
                )
        else:
            data = {"ok": True, "data": data}
        indent = self.get_indent(accepted_media_type, renderer_context or {})
        markers: dict[str, str] | None = {} if self.compact and indent is None else None
        data = _put_rendered(data, markers)
        body = super().render(data, accepted_media_type, renderer_context)
        for marker, text in (markers or {}).items():
            body = body.replace(f'"{marker}"'.encode(), text.encode(), 1)
        return body


# --- pagination ----------------------------------------------------------------------------------


class EnvelopeLimitOffsetPagination(LimitOffsetPagination):
    """`limit`/`offset` pages inside the envelope's data; an out-of-range value is a 400."""

    max_limit = 1000

    def _parse(self, request: Request, name: str, default: int, low: int, high: int | None) -> int:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except (TypeError, ValueError):
            value = None
        if value is None or value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise exceptions.ValidationError({name: [f"Must be a whole number {bound}."]})
        return value

    def get_limit(self, request: Request) -> int:
        return self._parse(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return self._parse(request, self.offset_query_param, 0, 0, None)

    def get_schema_operation_parameters(self, view: object) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"].update(
                    {"minimum": 1, "maximum": self.max_limit, "default": self.default_limit}
                )
                parameter["description"] = (
                    f"Number of results per page, 1 to {self.max_limit} "
                    f"(default {self.default_limit})."
                )
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"].update({"minimum": 0, "default": 0})
        return parameters


# --- routes ------------------------------------------------------------------------------------


def _api_router_class() -> type:
    from rest_framework.routers import DynamicRoute, SimpleRouter

    class ApiRouter(SimpleRouter):
        """Collections and objects end in a slash (/api/scans/, /api/scans/1/); their actions do
        not (/api/scans/1/results, /api/watchlists/1/scan)."""

        routes = [
            route._replace(url=route.url.replace("{trailing_slash}", ""))
            if isinstance(route, DynamicRoute)
            else route
            for route in SimpleRouter.routes
        ]

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # Every object is found by its integer id: a path with anything else in its place
            # matches no route and is the 404 envelope of handler404 (a viewset may still set
            # its own lookup_value_regex).
            self._default_value_pattern = "[0-9]+"

    ApiRouter.__module__ = __name__
    return ApiRouter


# --- the envelope in the OpenAPI schema ----------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="Machine-readable: invalid, not_found, not_authenticated, conflict, ..."
    )
    message = serializers.CharField(help_text="Human-readable; names the fields at fault.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per request field (query parameter or body field); may be empty.",
    )


class ErrorEnvelopeSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="Always false.")
    error = ErrorSerializer()


ERROR_DESCRIPTIONS = {
    "400": "Invalid input: `error.fields` names each field at fault.",
    "401": "Not authenticated: send a token (`Authorization: Token ...`) or a session cookie.",
    "403": "Authenticated, but not allowed to do this.",
    "404": "Not found (or not yours).",
    "409": "Conflicts with the current state; `error.message` says why.",
    "429": "Throttled: too many requests; `Retry-After` says when to try again.",
}
MALFORMED_DESCRIPTION = (
    "A malformed request: more than DATA_UPLOAD_MAX_NUMBER_FIELDS query parameters, or a body "
    "too large."
)


class EnvelopeSchemaMixin:
    """drf-spectacular's schema with the envelope around every documented response.

    Mixed into drf-spectacular's AutoSchema as `EnvelopeAutoSchema`, created on first use (see the
    module's __getattr__) because drf_spectacular.openapi cannot be imported while DRF loads.
    """

    def _error_ref(self) -> dict:
        return self.resolve_serializer(ErrorEnvelopeSerializer, "response").ref

    def _wrap(self, schema: dict, status_code: str) -> dict:
        if status_code.startswith("2"):
            return {
                "type": "object",
                "properties": {"ok": {"type": "boolean", "enum": [True]}, "data": schema},
                "required": ["ok", "data"],
            }
        return self._error_ref()

    def _get_response_for_code(
        self,
        serializer: Any,
        status_code: str,
        media_types: Any = None,
        direction: str = "response",
    ) -> dict:
        response = super()._get_response_for_code(serializer, status_code, media_types, direction)
        if status_code >= "400" and "content" not in response:
            media = media_types or self.map_renderers("media_type")
            response["content"] = {m: {"schema": self._error_ref()} for m in media}
            return response
        for media_type in response.get("content", {}).values():
            if "schema" in media_type:
                media_type["schema"] = self._wrap(media_type["schema"], status_code)
        return response

    def _takes_input(self) -> bool:
        if self.method in ("POST", "PUT", "PATCH"):
            return True
        if self._is_list_view() and (
            self._get_paginator() or getattr(self.view, "filterset_class", None)
        ):
            return True
        return any(
            not isinstance(p, dict) and getattr(p, "location", "query") == "query"
            for p in self.get_override_parameters()
        )

    def _needs_authentication(self) -> bool:
        from rest_framework.permissions import AllowAny

        return any(not isinstance(p, AllowAny) for p in self.view.get_permissions())

    def _get_response_bodies(self, direction: str = "response") -> dict:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        # Every operation can be throttled and can get a malformed request (Django refuses a
        # query string of too many parameters before any view reads it).
        descriptions = {
            "400": ERROR_DESCRIPTIONS["400"] if self._takes_input() else MALFORMED_DESCRIPTION,
            "429": ERROR_DESCRIPTIONS["429"],
        }
        if self._needs_authentication():
            descriptions |= {code: ERROR_DESCRIPTIONS[code] for code in ("401", "403")}
        if "{" in self.path:
            descriptions["404"] = ERROR_DESCRIPTIONS["404"]
        for code in sorted(descriptions):
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(description=descriptions[code]), code
                )
        return responses


def _envelope_auto_schema_class() -> type:
    from drf_spectacular.openapi import AutoSchema

    return type(
        "EnvelopeAutoSchema",
        (EnvelopeSchemaMixin, AutoSchema),
        {"__module__": __name__, "__doc__": EnvelopeSchemaMixin.__doc__},
    )


# Classes built on first use, from modules that import rest_framework.views (see the top).
_LAZY_CLASSES = {"EnvelopeAutoSchema": _envelope_auto_schema_class, "ApiRouter": _api_router_class}


def __getattr__(name: str) -> Any:
    if name in _LAZY_CLASSES:
        built = globals()[name] = _LAZY_CLASSES[name]()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
