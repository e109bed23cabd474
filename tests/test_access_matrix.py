"""The access matrix: every page, API and websocket route against every kind of caller.

The routes are read from the URL configuration itself (Django's resolver, includes and the
django-ninja API walked recursively; the websocket routes from the ASGI application's router),
and each must be classified in ROUTES below. A route that ROUTES does not classify fails
`test_every_route_is_classified` and its own case, named: a route added later cannot escape.

Callers:
- pages and public routes: anonymous, outsider (charlie, owner of another project), invited
  (dave, invited to alice's project and not yet joined), removed (erin, a member alice removed),
  member (bob), owner (alice), signed in with the session cookie;
- the API (/api/v1, bearer keys): no key, a signed-in owner without a key (a session is no API
  credential), a revoked key, a key of another project, a key of the project lacking the route's
  scope, a key of the project with only that scope;
- the Sentry ingest endpoints (a DSN's public key): no key, a signed-in owner without a key, the
  key of another project, the project's key;
- websockets: the same six;
- and object ids of another project: charlie on his own project with alice's issue, rule, key
  or session in the URL (every route with such an id).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import quote

import orjson
import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from ninja.operation import PathView

from dashboard import live_rows
from errorsink.alerts.rules import RuleIn, rule_create
from errorsink.door.app import ROUTES as DOOR_ROUTES
from errorsink.issues.models import Issue
from errorsink.projects.api_keys import api_key_create, api_key_revoke
from errorsink.projects.models import ApiKey, Membership
from errorsink.projects.services import project_add_member, project_create
from errorsink.projects.team import invitation_create, member_remove
from errorsink.sentry.keys import sentry_key_for
from tests.door_client import DoorClient
from tests.ingest_helpers import error_item, items_store

pytestmark = pytest.mark.django_db

# ---------------------------------------------------------------------------------------------
# The expectations: one entry per route, keyed by its name ("namespace:name" inside a namespace)
# or, for a route without a name, its pattern.

MEMBERS = "members"  # members and owners may
OWNERS = "owners"  # owners only: members are refused with 403


@dataclass(frozen=True)
class Page:
    """A signed-in page. `methods`: who may use each method; `data`: the body of its POST (the
    owner's POST is sent for real: chosen so it changes little). `scoped`: under a project, so
    outsiders get 404; else a page of one's own (outsiders see it, without the project)."""

    methods: dict[str, str]
    data: dict = field(default_factory=dict)
    scoped: bool = True
    lists_projects: bool = True  # unscoped: a page listing one's projects (else one's account)
    # role (or "foreign-ids") -> why that case is a known access bug: xfail, strict.
    bugs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Public:
    """Open to everyone alike: each method's status whoever asks."""

    methods: dict[str, int]
    bugs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Api:
    """A /api/v1 operation behind KeyAuth: `scope` None means any valid key. `body` is sent
    with a write (valid, so that a foreign id reaches the route's own 404 and not the 422 of
    body validation); its method is the operation's own."""

    scope: str | None
    body: object = None
    scoped: bool = True
    bugs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SentryIngest:
    """Sentry SDKs' endpoints: authenticated by the DSN's public key, not by a session."""

    bugs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Socket:
    """A live page's websocket: members and owners are accepted. `checks_ids`: an object id of
    another project in the path is refused (else the socket only ever reads its own project)."""

    checks_ids: bool = False
    bugs: dict[str, str] = field(default_factory=dict)


RULE_BODY = {"condition": {"type": "new_issue"},
             "channels": [{"type": "email", "to": ["matrix@example.com"]}]}  # fmt: skip

ROUTES: dict[str, Page | Public | Api | SentryIngest | Socket] = {
    # Public: no session needed, the same for everyone.
    "favicon.ico": Public({"GET": 301}),
    "login": Public({"GET": 200}),
    "logout": Public({"POST": 302}),
    "api:api-root": Public({"GET": 404}),  # ninja's placeholder: only names the prefix
    "api:openapi-json": Public({"GET": 200}),
    "api:openapi-view": Public({"GET": 200}),
    # Sentry SDKs, by the DSN's key (docs/sentry.md), at the front door (errorsink/door).
    "door:sentry-envelope": SentryIngest(),
    "door:sentry-store": SentryIngest(),
    # Pages.
    "projects": Page({"GET": MEMBERS}, scoped=False),
    "project": Page({"GET": MEMBERS}),
    "demo-load": Page({"POST": OWNERS}),  # the project has events: nothing is loaded
    "sentry-key-rotate": Page({"POST": OWNERS}),
    "session-list": Page({"GET": MEMBERS}),
    "session-timeline": Page({"GET": MEMBERS}),
    "issue": Page({"GET": MEMBERS}),
    "issue-status-change": Page({"POST": MEMBERS}, data={"status": "resolved"}),  # both triage
    "dead-letters": Page({"GET": OWNERS}),
    "dead-letters-act": Page({"POST": OWNERS}, data={"action": "neither"}),
    "alert-rules": Page({"GET": MEMBERS}),
    "alert-rule-new": Page({"POST": OWNERS}),  # an empty form: refused as invalid, not saved
    "alert-rule": Page({"GET": MEMBERS}),
    "alert-rule-edit": Page({"POST": OWNERS}),
    "alert-rule-act": Page({"POST": OWNERS}, data={"action": "mute"}),
    "session-settings": Page({"GET": MEMBERS, "POST": OWNERS}),
    "api-keys": Page(
        {"GET": MEMBERS, "POST": OWNERS}, data={"name": "matrix", "scopes": ["errors:read"]}
    ),
    "api-key-revoke": Page({"POST": OWNERS}),
    # Teams (docs/teams.md). Every signed-in user may start a project.
    "project-new": Page({"POST": MEMBERS}, data={"name": "Started in the matrix"}, scoped=False),
    "members": Page({"GET": MEMBERS}),
    "member-invite": Page({"POST": OWNERS}, data={"email": "new@example.com", "role": "member"}),
    "member-role": Page({"POST": OWNERS}, data={"role": "member"}),  # bob stays a member
    "member-remove": Page({"POST": OWNERS}),  # bob
    "invitation-withdraw": Page({"POST": OWNERS}),
    # A member leaves; alice, the only owner, is refused with a message (a redirect).
    "project-leave": Page({"POST": MEMBERS}),
    "project-rename": Page({"POST": OWNERS}, data={"name": "Renamed in the matrix"}),
    "project-delete": Page({"POST": OWNERS}, data={"confirm": "not its name"}),  # refused
    "password_change": Page({"GET": MEMBERS}, scoped=False, lists_projects=False),
    "password_change_done": Page({"GET": MEMBERS}, scoped=False, lists_projects=False),
    # Accounts: open to everyone; a link's secret is what grants anything.
    "invitation": Public({"GET": 404, "POST": 404}),  # a token errorsink never made
    "invitation-renew": Public({"POST": 404}),
    "signup": Public({"GET": 404}),  # open sign-up is off unless an operator allows it
    "password_reset": Public({"GET": 200}),
    "password_reset_done": Public({"GET": 200}),
    "password_reset_confirm": Public({"GET": 200}),  # "this link does not work"
    "password_reset_complete": Public({"GET": 200}),
    # Single sign-on (django-allauth): no provider is configured here.
    "account_login": Public({"GET": 302}),
    "socialaccount_login_cancelled": Public({"GET": 200}),
    "socialaccount_login_error": Public({"GET": 401}),
    "socialaccount_signup": Public({"GET": 302}),  # no sign-in under way: back to sign in
    "openid_connect_login": Public({"GET": 404, "POST": 404}),  # no such provider
    "openid_connect_callback": Public({"GET": 404}),
    # The API (docs/api.md).
    "api:session_errors_latest": Api("errors:read"),
    "api:sessions_list": Api("errors:read"),
    "api:session_errors": Api("errors:read"),
    "api:session_timeline": Api("errors:read"),
    "api:session_turns": Api("errors:read"),
    "api:latency": Api("errors:read"),
    # The front door's ingest routes: an empty list is a 422, nothing enqueued.
    "door:events": Api("errors:write", body=[]),
    "door:events-batch": Api("errors:write", body=[]),
    # OTLP: an empty export request ({} in OTLP JSON); /v1/traces names no project (the key's).
    "door:otlp-traces": Api("errors:write", body={}, scoped=False),
    "door:otlp-project-traces": Api("errors:write", body={}),
    "api:session_settings_read": Api("settings:read"),
    "api:session_settings_patch": Api("settings:write", body={}),
    "api:codes": Api(None, scoped=False),
    "api:quality": Api("errors:read"),
    "api:issues_list": Api("errors:read"),
    "api:issue_read": Api("errors:read"),
    "api:issue_patch": Api("errors:write", body={"status": "resolved"}),
    "api:issue_events": Api("errors:read"),
    "api:alert_rules_list": Api("settings:read"),
    "api:alert_rule_create": Api("settings:write", body=RULE_BODY),
    "api:alert_rule_patch": Api("settings:write", body={"muted": True}),
    "api:alert_rule_delete": Api("settings:write"),
    # Websockets (dashboard/routing.py).
    "ws/projects/<uuid:project_id>/": Socket(),
    "ws/projects/<uuid:project_id>/issues/<int:issue_id>/": Socket(checks_ids=True),
    # An unknown session is an empty timeline of the socket's own project.
    "ws/projects/<uuid:project_id>/sessions/<session_id:session_id>/": Socket(),
}

PAGE_ROLES = ("anonymous", "outsider", "invited", "removed", "member", "owner")
# Signed in without belonging: charlie (another project's owner), dave (invited to alice's
# project, not yet joined), erin (a member alice removed). Each sees what charlie sees.
OUTSIDERS = ("outsider", "invited", "removed")
API_ROLES = ("no-key", "session-only", "revoked-key", "other-project-key", "unscoped-key",
             "scoped-key")  # fmt: skip
SENTRY_ROLES = ("no-key", "session-only", "other-project-key", "project-key")
SOCKET_ROLES = PAGE_ROLES
# Parameters a route's path may hold that name an object of a project (for the foreign-ids case).
OBJECT_PARAMS = ("issue_id", "rule_id", "key_id", "session_id", "member_id", "invitation_id")

# ---------------------------------------------------------------------------------------------
# The routes, as configured.


@dataclass(frozen=True)
class Route:
    key: str
    route: str  # the full pattern, e.g. "projects/<uuid:project_id>/"
    pattern: URLPattern

    @property
    def params(self) -> list[str]:
        return re.findall(r"<(?:\w+:)?(\w+)>", self.route)


def _walk(patterns, prefix: str = "", namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = ":".join(part for part in (namespace, pattern.namespace) if part)
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern.callback, URLRouter):  # channels' nested routers
            yield from _walk(pattern.callback.routes, prefix + str(pattern.pattern), namespace)
        else:
            route = prefix + str(pattern.pattern)
            key = (f"{namespace}:{pattern.name}" if namespace else pattern.name) or route
            yield Route(key, route, pattern)


def http_routes() -> list[Route]:
    return list(_walk(get_resolver().url_patterns))


def socket_routes() -> list[Route]:
    """The routes of the websocket router the ASGI application really serves, found through
    its middleware (so a route added anywhere in that stack is seen, not only routing.py's)."""
    from config.asgi import application

    app = application.application_mapping["websocket"]
    while not isinstance(app, URLRouter):
        app = getattr(app, "application", None) or app.inner
    return [Route(route.route, route.route, route.pattern) for route in _walk(app.routes)]


def _ninja_operation(pattern: URLPattern):
    """The django-ninja operation a URL pattern serves (ninja makes one pattern per operation,
    named by it, all of a path sharing one view), or None for any other view."""
    for cell in getattr(pattern.callback, "__closure__", None) or ():
        if isinstance(cell.cell_contents, PathView):
            for operation in cell.cell_contents.operations:
                name = getattr(operation, "url_name", None) or operation.view_func.__name__
                if name == pattern.name:
                    return operation
    return None


def door_routes() -> list[Route]:
    """The ingest routes the front door answers before Django (errorsink/door/app.py)."""
    return [Route(route.name, route.path, None) for route in DOOR_ROUTES]


HTTP_ROUTES = http_routes() + door_routes()
SOCKET_ROUTES = socket_routes()
ALL_ROUTES = HTTP_ROUTES + SOCKET_ROUTES


def _cases(kinds: tuple[type, ...], roles: tuple[str, ...], routes: list[Route]) -> list:
    """(route, role) for every route whose entry is one of `kinds`, each case named by both and
    marked xfail (strict) where the entry records a known access bug for that role."""
    cases = []
    for route in routes:
        expected = ROUTES.get(route.key)
        if not isinstance(expected, kinds):
            continue
        for role in roles:
            marks = []
            if role in expected.bugs:
                marks.append(pytest.mark.xfail(strict=True, reason=expected.bugs[role]))
            param_id = f"{route.key}|{role}"
            cases.append(pytest.param(route, expected, role, id=param_id, marks=marks))
    return cases


CHECKED: Counter = Counter()  # family -> (route, role) cases that ran to the end
CHECKED_ROUTES: dict[str, set[str]] = {}


def _checked(family: str, route: Route) -> None:
    CHECKED[family] += 1
    CHECKED_ROUTES.setdefault(family, set()).add(route.key)


class _Summary:
    """Prints what the matrix covered in pytest's closing summary."""

    started = time.monotonic()

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not CHECKED:
            return
        seconds = time.monotonic() - self.started
        total = sum(CHECKED.values())
        families = ", ".join(
            f"{family} {count} ({len(CHECKED_ROUTES[family])} routes)"
            for family, count in sorted(CHECKED.items())
        )
        terminalreporter.write_sep("-", "access matrix")
        terminalreporter.write_line(
            f"{len(HTTP_ROUTES)} HTTP + {len(SOCKET_ROUTES)} websocket routes classified; "
            f"{total} route x role cases checked in {seconds:.1f} s: {families}"
        )


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    manager = request.config.pluginmanager
    if not manager.has_plugin("access-matrix-summary"):
        _Summary.started = time.monotonic()
        manager.register(_Summary(), "access-matrix-summary")


# ---------------------------------------------------------------------------------------------
# What the ids are filled with.

SESSION_ID = "call-matrix-1"
SECRET = "Handler failed in the matrix project"


@dataclass
class World:
    project: object
    other: object
    users: dict[str, object]
    values: dict[str, object]  # route parameters, all of alice's project
    foreign: dict[str, object]  # charlie's project, with alice's objects' ids
    keys: dict[str, object] = field(default_factory=dict)


@pytest.fixture(autouse=True)
def no_celery(monkeypatch):
    """Nothing a POST might start leaves the process (no worker runs here)."""
    monkeypatch.setattr("errorsink.tasks.demo_load.delay", lambda **kwargs: None)
    monkeypatch.setattr("errorsink.tasks.alert_deliver.delay", lambda *args: None)


@pytest.fixture
def world(alice, bob, charlie, project, django_user_model) -> World:
    other = project_create(name="Someone else's bot", owner=charlie)
    items_store([error_item(project.id, session_id=SESSION_ID, message=SECRET)])
    issue = Issue.objects.get(project=project)
    rule = rule_create(project=project, data=RuleIn(
        name="Matrix rule",
        condition={"type": "event_count", "threshold": 5, "window_seconds": 600},
        channels=[{"type": "email", "to": ["oncall@example.com"]}],
    ))  # fmt: skip
    key, _ = api_key_create(project=project, scopes=ApiKey.SCOPES, name="listed")
    sentry, other_sentry = sentry_key_for(project), sentry_key_for(other)
    dave = django_user_model.objects.create_user("dave", email="dave@example.com")
    invited = invitation_create(project=project, email="dave@example.com", role="member",
                                by=alice).invitation  # fmt: skip
    erin = django_user_model.objects.create_user("erin", email="erin@example.com")
    project_add_member(project=project, user=erin, role=Membership.MEMBER)
    member_remove(membership=project.memberships.get(user=erin), by=alice)
    values = {
        "project_id": project.id, "issue_id": issue.id, "rule_id": rule.id, "key_id": key.id,
        "session_id": SESSION_ID, "sentry_id": sentry.id,
        "member_id": project.memberships.get(user=bob).id, "invitation_id": invited.id,
        "token": "not-a-token-errorsink-made", "uidb64": "MQ", "provider_id": "nowhere",
    }  # fmt: skip
    return World(
        project=project,
        other=other,
        users={
            "anonymous": None,
            "outsider": charlie,
            "invited": dave,
            "removed": erin,
            "member": bob,
            "owner": alice,
        },  # fmt: skip
        values=values,
        foreign={**values, "project_id": other.id, "sentry_id": other_sentry.id},
        keys={"sentry": sentry, "other_sentry": other_sentry},
    )


def _url(route: Route, values: dict) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            pytest.fail(f"{route.key}: no value for <{name}>; give the matrix's world one")
        return quote(str(values[name]), safe="")

    # django-allauth's OpenID Connect routes are regular expressions: their groups are filled too.
    plain = re.sub(r"\^?\(\?P<(\w+)>[^)]*\)", r"<\1>", route.route)
    url = "/" + re.sub(r"<(?:\w+:)?(\w+)>", value, plain)
    if re.search(r"[<>^$(]", url):
        pytest.fail(f"{route.key}: cannot fill the pattern {route.route!r}")
    return url


def _client(user=None) -> Client:
    client = Client(HTTP_HOST="localhost")
    if user is not None:
        client.force_login(user)
    return client


def _send(client: Client, method: str, url: str, data=None, **kwargs):
    if method == "GET":
        return client.get(url, **kwargs)
    if method == "POST" and isinstance(data, dict) and "content_type" not in kwargs:
        return client.post(url, data, **kwargs)  # a form
    return client.generic(method, url, data if data is not None else b"", **kwargs)


def _door_send(client: Client, url: str, body: bytes, headers: dict):
    """POST through the ASGI application (the front door), with the client's session cookie:
    a signed-in browser without a key must be refused there too."""
    cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
    if cookie is not None:
        headers = {**headers, "Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie.value}"}
    return DoorClient().post(url, body, headers=headers)


def _where(method: str, url: str, role: str, response) -> str:
    location = f" -> {response['Location']}" if response.has_header("Location") else ""
    return f"{method} {url} as {role}: {response.status_code}{location}"


def _refused(response) -> bool:
    return response.status_code in (401, 403, 404, 405) or response.status_code >= 500


def _to_login(response) -> bool:
    login = reverse("login")
    return response.status_code == 302 and response["Location"].startswith(f"{login}?next=")


# ---------------------------------------------------------------------------------------------
# Completeness.


def test_every_route_is_classified():
    """Every configured route has an entry, no entry names a route that is gone, no two routes
    share a key, and every API operation's entry agrees with the scope its code asks for."""
    keys = [route.key for route in ALL_ROUTES]
    unclassified = [f"{r.key} ({r.route})" for r in ALL_ROUTES if r.key not in ROUTES]
    stale = sorted(set(ROUTES) - set(keys))
    doubled = sorted(key for key, n in Counter(keys).items() if n > 1)
    assert not unclassified, f"routes not classified in ROUTES: {unclassified}"
    assert not stale, f"ROUTES names routes that are not configured: {stale}"
    assert not doubled, f"routes sharing a key: {doubled}"
    door_scopes = {route.name: route.scope for route in DOOR_ROUTES}
    for route in HTTP_ROUTES:
        if route.key in door_scopes:
            expected = ROUTES[route.key]
            assert getattr(expected, "scope", None) == door_scopes[route.key], route.key
            continue
        expected, operation = ROUTES[route.key], _ninja_operation(route.pattern)
        if operation is not None and isinstance(expected, Api):
            scopes = {getattr(auth, "scope", "?") for auth in operation.auth_callbacks}
            assert scopes == {expected.scope}, f"{route.key}: code asks {scopes}"
        if isinstance(expected, Api):
            assert operation is not None, f"{route.key}: classified as an API operation"


@pytest.mark.parametrize("route", [pytest.param(r, id=r.key) for r in ALL_ROUTES])
def test_route_has_an_entry(route):
    assert route.key in ROUTES, (
        f"route {route.key!r} ({route.route}) is not classified in the access matrix: add it "
        "to ROUTES in tests/test_access_matrix.py with who may read and act"
    )


# ---------------------------------------------------------------------------------------------
# Pages and public routes.


NOWHERE = "00000000-0000-4000-8000-000000000000"  # a project id that exists nowhere


def _outsider_sees_nothing(client: Client, route: Route, expected: Page, values: dict) -> None:
    """An outsider's answer to each of GET and POST, whatever the route accepts, is the one
    for a project that does not exist: 404, or the 405 of a method the route never takes."""
    url, nowhere = _url(route, values), _url(route, {**values, "project_id": NOWHERE})
    for method in ("GET", "POST"):
        data = expected.data if method == "POST" else None
        real, none = _send(client, method, url, data), _send(client, method, nowhere, data)
        where = _where(method, url, "an outsider", real)
        assert real.status_code in (404, 405), f"{where}: expected 404"
        assert real.status_code == none.status_code, f"{where}, {none.status_code} for none"
        if method in expected.methods:
            assert real.status_code == 404, f"{where}: expected 404 (existence not revealed)"


@pytest.mark.parametrize("route,expected,role", _cases((Page,), PAGE_ROLES, HTTP_ROUTES))
def test_page(world, route, expected, role):
    client = _client(world.users[role])
    if role in OUTSIDERS and expected.scoped:
        _outsider_sees_nothing(client, route, expected, world.values)
        _checked("pages", route)
        return
    url = _url(route, world.values)
    for method, who in expected.methods.items():  # reads before actions
        data = expected.data if method != "GET" else None
        response = _send(client, method, url, data)
        where = _where(method, url, role, response)
        if role == "anonymous":
            assert _to_login(response), f"{where}: expected a redirect to sign in"
        elif role == "member" and who == OWNERS:
            assert response.status_code == 403, f"{where}: expected 403 (owners only)"
        elif method == "GET":
            assert response.status_code == 200, f"{where}: expected 200"
            if not expected.scoped and expected.lists_projects:  # a project only to members
                shown = world.project.name in response.content.decode()
                assert shown == (role not in OUTSIDERS), f"{where}: project shown={shown}"
        else:
            assert not _refused(response) and not _to_login(response), f"{where}: refused"
    _checked("pages", route)


@pytest.mark.parametrize("route,expected,role", _cases((Public,), PAGE_ROLES, HTTP_ROUTES))
def test_public(world, route, expected, role):
    client = _client(world.users[role])
    url = _url(route, world.values)
    for method, status in expected.methods.items():
        response = _send(client, method, url)
        assert response.status_code == status, _where(method, url, role, response)
    _checked("public", route)


# ---------------------------------------------------------------------------------------------
# The API.


def _api_key(world: World, role: str, scope: str | None) -> str | None:
    if role in ("no-key", "session-only"):
        return None
    if role == "other-project-key":
        return api_key_create(project=world.other, scopes=ApiKey.SCOPES)[1]
    if role == "revoked-key":
        key, plaintext = api_key_create(project=world.project, scopes=ApiKey.SCOPES)
        api_key_revoke(key=key)
        return plaintext
    if role == "unscoped-key":  # every scope but the route's (or only one, for "any key")
        scopes = [s for s in ApiKey.SCOPES if s != scope] if scope else ApiKey.SCOPES[-1:]
        return api_key_create(project=world.project, scopes=scopes)[1]
    return api_key_create(project=world.project, scopes=[scope or ApiKey.SCOPES[0]])[1]


def _api_calls(client: Client, route: Route, expected: Api, url: str, key: str | None):
    """(method, response) for each method of the route's operation, with the key if any."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if route.pattern is None:  # the front door's: POST only, outside Django
        body = orjson.dumps(expected.body)
        yield "POST", _door_send(client, url, body, headers)
        return
    for method in _ninja_operation(route.pattern).methods:
        body = None
        if method != "GET" and expected.body is not None:
            body = orjson.dumps(expected.body)
        json = "application/json"
        yield method, _send(client, method, url, body, content_type=json, headers=headers)


@pytest.mark.parametrize("route,expected,role", _cases((Api,), API_ROLES, HTTP_ROUTES))
def test_api(world, route, expected, role):
    client = _client(world.users["owner"] if role == "session-only" else None)
    url = _url(route, world.values)
    key = _api_key(world, role, expected.scope)
    for method, response in _api_calls(client, route, expected, url, key):
        where = _where(method, url, role, response)
        status = response.status_code
        if role in ("no-key", "session-only", "revoked-key"):
            assert status == 401, f"{where}: expected 401"
        elif role == "other-project-key" and expected.scoped:
            assert status == 404, f"{where}: expected 404 (existence not revealed)"
        elif role == "unscoped-key" and expected.scope:
            assert status == 403, f"{where}: expected 403 (lacks {expected.scope})"
        elif method == "GET":
            assert status == 200, f"{where}: expected 200"
        else:  # auth passed; what the body does after is the route's own business
            assert not _refused(response), f"{where}: refused"
    _checked("api", route)


# ---------------------------------------------------------------------------------------------
# Sentry SDKs' ingest.


@pytest.mark.parametrize("route,expected,role", _cases((SentryIngest,), SENTRY_ROLES, HTTP_ROUTES))
def test_sentry_ingest(world, route, expected, role):
    client = _client(world.users["owner"] if role == "session-only" else None)
    sentry_key = {"other-project-key": world.keys["other_sentry"],
                  "project-key": world.keys["sentry"]}.get(role)  # fmt: skip
    headers = {}
    if sentry_key is not None:
        headers["X-Sentry-Auth"] = f"Sentry sentry_key={sentry_key.public_key}, sentry_version=7"
    url = _url(route, world.values)
    # Not an event (nothing is enqueued): past the key it is the body's 400.
    response = _door_send(client, url, b"not an event", headers)
    where = _where("POST", url, role, response)
    expected_status = {"no-key": 401, "session-only": 401, "other-project-key": 403}.get(role)
    if expected_status:
        assert response.status_code == expected_status, where
    else:
        assert response.status_code not in (401, 403) and response.status_code < 500, where
    _checked("sentry", route)


# ---------------------------------------------------------------------------------------------
# Websockets.


def _session_cookie(user) -> str:
    if user is None:
        return ""
    client = _client(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def _socket(path: str, cookie: str) -> tuple[bool, str]:
    """Whether the handshake was accepted, and what the socket sent first."""
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    from config.asgi import application

    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    sent = []
    if connected:
        first = await communicator.receive_output(timeout=5)  # the page's current view
        sent.append(first.get("text", ""))
        while not await communicator.receive_nothing(timeout=0.1):
            message = await communicator.receive_output()
            if message["type"] == "websocket.close":
                break
            sent.append(message.get("text", ""))
    await communicator.disconnect()  # a refused consumer, too, waits for the disconnect
    return connected, "".join(sent)


def _socket_run(path: str, cookie: str) -> tuple[bool, str]:
    live_rows.cache_clear()
    return async_to_sync(_socket)(path, cookie)


def _socket_cases() -> list:
    """One case per route: each socket case costs a transactional test's flush, so its roles
    (and its foreign-ids check) share one; a failure names the route and every failing role.
    A known bug of any role marks the route's case xfail (strict)."""
    cases = []
    for route in SOCKET_ROUTES:
        expected = ROUTES.get(route.key)
        if isinstance(expected, Socket):
            reasons = "; ".join(f"{role}: {why}" for role, why in expected.bugs.items())
            marks = [pytest.mark.xfail(strict=True, reason=reasons)] if reasons else []
            cases.append(pytest.param(route, expected, id=route.key, marks=marks))
    return cases


@pytest.mark.django_db(transaction=True)  # the consumer reads the database from other threads
@pytest.mark.parametrize("route,expected", _socket_cases())
def test_socket(world, route, expected):
    """Anonymous and outsiders refused, members and owners accepted; and charlie on his own
    project with alice's issue or session: refused where the route checks the id, and never
    sent anything of alice's."""
    failures = []
    url = _url(route, world.values)
    for role in SOCKET_ROLES:
        accepted, sent = _socket_run(url, _session_cookie(world.users[role]))
        should = role in ("member", "owner")
        if accepted != should:
            failures.append(f"{url} as {role}: accepted={accepted}, expected {should}")
        elif should and SECRET not in sent:  # so that its absence below means something
            failures.append(f"{url} as {role}: the page's view lacks the project's error")
        _checked("sockets", route)
    if set(route.params) & set(OBJECT_PARAMS):
        foreign = _url(route, world.foreign)
        accepted, sent = _socket_run(foreign, _session_cookie(world.users["outsider"]))
        if expected.checks_ids and accepted:
            failures.append(f"{foreign} as charlie: accepted an id of another project")
        if SECRET in sent:
            failures.append(f"{foreign} as charlie: sent alice's events")
        _checked("foreign-ids", route)
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------------------------
# Object ids of another project.


def _foreign_cases(kinds: tuple[type, ...]) -> list:
    cases = []
    for route in ALL_ROUTES:
        expected = ROUTES.get(route.key)
        if not isinstance(expected, kinds) or not set(route.params) & set(OBJECT_PARAMS):
            continue
        marks = []
        if "foreign-ids" in expected.bugs:
            marks.append(pytest.mark.xfail(strict=True, reason=expected.bugs["foreign-ids"]))
        cases.append(pytest.param(route, expected, id=route.key, marks=marks))
    return cases


@pytest.mark.parametrize("route,expected", _foreign_cases((Page, Api)))
def test_foreign_ids(world, route, expected):
    """Charlie, owner of his own project, with alice's issue, rule, key or session in a path
    under his project: 404, as for an id that does not exist."""
    url = _url(route, world.foreign)
    if isinstance(expected, Api):
        charlies = api_key_create(project=world.other, scopes=ApiKey.SCOPES)[1]
        for method, response in _api_calls(_client(), route, expected, url, charlies):
            where = _where(method, url, "charlie's key", response)
            assert response.status_code == 404, f"{where}: expected 404"
    else:
        client = _client(world.users["outsider"])
        for method in expected.methods:
            response = _send(client, method, url, expected.data if method != "GET" else None)
            where = _where(method, url, "charlie", response)
            assert response.status_code == 404, f"{where}: expected 404"
    _checked("foreign-ids", route)
