"""What the door sends back: a status, a JSON body and headers, in the API's error envelope
(docs/api.md) or in Sentry's ``{"detail"}`` form."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from errorsink.api.errors import ApiError, error_json


@dataclass
class Answer:
    status: int
    body: dict | list | bytes  # bytes: encoded already, in ``content_type`` (OTLP's protobuf)
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else orjson.dumps(self.body)


def api_error_answer(error: ApiError, request_id: str) -> Answer:
    headers = dict(error.headers)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="errorsink"'
    return Answer(error.status, error_json(error, request_id), headers)
