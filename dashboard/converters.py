"""URL converter for session ids, which are untrusted strings of any characters."""

import re

from django.urls import register_converter

# "/" and "%" are escaped in the id's own way, and an id of only dots too: otherwise "a/../b"
# or ".." would be a path that browsers shorten before asking, and a link would lead to
# another page (the project's). Django then quotes the result like any other URL.
_ESCAPES = {"%": "%25", "/": "%2F", ".": "%2E"}
_UNESCAPES = re.compile(r"%25|%2F|%2E")


class SessionIdConverter:
    # Any character, slashes and newlines included: a session id that `str` or `path` would
    # refuse must not make `{% url %}` raise and take the whole project page down with it.
    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        reverse = {escaped: char for char, escaped in _ESCAPES.items()}
        return _UNESCAPES.sub(lambda match: reverse[match.group()], value)

    def to_url(self, value: str) -> str:
        escaped = value.replace("%", "%25").replace("/", "%2F")
        return escaped.replace(".", "%2E") if set(escaped) <= {"."} else escaped


register_converter(SessionIdConverter, "session_id")
