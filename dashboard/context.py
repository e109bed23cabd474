"""What every page's template may ask about accounts."""

from django.conf import settings
from django.http import HttpRequest


def accounts(request: HttpRequest) -> dict:
    return {"open_signup": settings.ERRORSINK_OPEN_SIGNUP}
