"""A secret shown on the one page that follows its creation (an API key, an invitation link).

Post/Redirect/Get, so a reload cannot create a second one; the secret waits for the page that
shows it in a short-lived signed cookie scoped to that page's path, on the browser that asked
for it and never in the database (a session row would keep it if the redirect were not
followed). The page deletes the cookie as it shows the secret.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

SHOWN_ONCE_SECONDS = 120


def shown_once_set(
    response: HttpResponse, request: HttpRequest, name: str, value: str, *, path: str
) -> HttpResponse:
    response.set_signed_cookie(
        name, value, salt=name, max_age=SHOWN_ONCE_SECONDS, path=path, httponly=True,
        samesite="Strict", secure=request.is_secure(),
    )  # fmt: skip
    return response


def shown_once_get(request: HttpRequest, name: str) -> str | None:
    return request.get_signed_cookie(name, None, salt=name, max_age=SHOWN_ONCE_SECONDS) or None


def shown_once_clear(response: HttpResponse, name: str, *, path: str) -> HttpResponse:
    response.delete_cookie(name, path=path)
    return response
