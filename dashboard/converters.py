"""URL converter for session ids, which are untrusted strings of any characters."""

from django.urls import register_converter


class SessionIdConverter:
    # Any character, slashes and newlines included: a session id that `str` or `path` would
    # refuse must not make `{% url %}` raise and take the whole project page down with it.
    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(SessionIdConverter, "session_id")
