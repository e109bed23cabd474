"""Dashboard pages as alice (owner), bob (member) and charlie (outsider)."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from errorsink.projects.services import project_create
from errorsink.sessions.models import Event
from tests.rollup_helpers import kept_stretch_reads, roll_up

pytestmark = pytest.mark.django_db

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def _project_url(project, **params):
    url = reverse("project", args=[project.id])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def _timeline_url(project, session_id):
    return reverse("session-timeline", args=[project.id, session_id])


# --- sign-in ---------------------------------------------------------------------------------


def test_it_sends_anonymous_users_to_sign_in(client, project):
    for url in [reverse("projects"), _project_url(project), _timeline_url(project, "s")]:
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


def test_it_signs_in_and_out(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-password"})
    assert response.status_code == 302 and response.url == reverse("projects")
    assert client.get(reverse("projects")).status_code == 200
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("projects")).status_code == 302


def test_it_rejects_a_wrong_password(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"didn't match" in response.content


# --- projects page ---------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_it_lists_the_members_projects_with_24h_counts(client, request, user, project, make_event):
    client.force_login(request.getfixturevalue(user))
    now = timezone.now()
    make_event(project)
    make_event(project, occurred_at=now - timedelta(hours=2))
    make_event(project, kind=Event.WARNING, code="31002", occurred_at=now - timedelta(hours=5))
    make_event(project, occurred_at=now - timedelta(hours=30))  # outside the window
    roll_up()

    response = client.get(reverse("projects"))

    assert response.status_code == 200
    row = response.context["projects"][0]
    assert (row.activity.errors, row.activity.warnings) == (2, 1)
    assert row.activity.errors_by_hour[-1] == 1 and row.activity.errors_by_hour[-3] == 1
    html = response.content.decode()
    assert "Voice bot" in html and "<svg" in html and 'class="spark-errors"' in html


def test_it_lists_nothing_for_an_outsider(client, charlie, project):
    client.force_login(charlie)
    response = client.get(reverse("projects"))
    assert response.status_code == 200
    assert "Voice bot" not in response.content.decode()
    assert "not a member of any project" in response.content.decode()


def test_it_counts_activity_of_all_projects_in_one_query(
    client, alice, make_event, django_assert_num_queries
):
    client.force_login(alice)
    for i in range(5):
        p = project_create(name=f"P{i}", owner=alice)
        make_event(p)
        make_event(p, kind=Event.WARNING, code="31002")
    roll_up()
    # session, user, projects, one aggregate for all projects' activity
    with django_assert_num_queries(4):
        response = client.get(reverse("projects"))
    assert [p.activity.errors for p in response.context["projects"]] == [1] * 5


# --- project page ----------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_it_shows_the_last_20_errors_newest_arrival_first(
    client, request, user, project, make_event
):
    client.force_login(request.getfixturevalue(user))
    now = timezone.now()
    events = [make_event(project, received_at=now + timedelta(seconds=i)) for i in range(25)]
    # Arrival order wins over occurred_at: an old error received last is on top.
    late = make_event(project, occurred_at=now - timedelta(days=2), received_at=now + timedelta(1))
    make_event(project, kind=Event.WARNING, code="31002", received_at=now + timedelta(2))

    response = client.get(_project_url(project))

    assert response.status_code == 200
    shown = [event.pk for event in response.context["events"]]
    assert shown == [late.pk] + [e.pk for e in reversed(events)][:19]
    html = response.content.decode()
    assert html.count('class="error-row"') == 20
    assert "Agent child process exited" in html  # catalog description
    assert reverse("session-timeline", args=[project.id, "sess-1"]) in html
    assert 'ws-connect="/ws/projects/' in html


def test_it_404s_the_project_page_for_an_outsider(client, charlie, project):
    client.force_login(charlie)
    assert client.get(_project_url(project)).status_code == 404


def test_it_404s_an_unknown_project(client, alice):
    client.force_login(alice)
    url = reverse("project", args=["00000000-0000-0000-0000-000000000000"])
    assert client.get(url).status_code == 404


def test_it_shows_an_unknown_code_as_unknown(client, alice, project, make_event):
    client.force_login(alice)
    make_event(project, code="MADE_UP_CODE")
    html = client.get(_project_url(project)).content.decode()
    assert "MADE_UP_CODE" in html and "unknown code" in html


def test_it_filters_by_code_and_source(client, alice, project, make_event):
    client.force_login(alice)
    a = make_event(project, code="AGENT_CHILD_CRASHED", source="agent")
    r = make_event(project, code="RUNNER_INTERNAL", source="runner")
    w = make_event(project, code="WEBRTC_CONNECTION_FAILED", source="client")

    def shown(**params):
        return [e.pk for e in client.get(_project_url(project, **params)).context["events"]]

    assert shown(code="RUNNER_INTERNAL") == [r.pk]
    assert shown(source="client") == [w.pk]
    assert shown(code="AGENT_CHILD_CRASHED", source="agent") == [a.pk]
    assert shown(code="AGENT_CHILD_CRASHED", source="runner") == []
    html = client.get(_project_url(project, code="RUNNER_INTERNAL", source="runner")).content
    assert (
        b"/ws/projects/%s/?code=RUNNER_INTERNAL&amp;source=runner" % str(project.id).encode()
        in html
    )


def test_it_answers_htmx_filter_requests_with_the_table_only(client, alice, project, make_event):
    client.force_login(alice)
    make_event(project, code="RUNNER_INTERNAL", source="runner")
    response = client.get(_project_url(project, source="runner"), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.strip().startswith('<section id="error-table"')
    assert "<html" not in html and "RUNNER_INTERNAL" in html


def test_it_answers_htmx_history_restores_with_the_whole_page(client, alice, project):
    client.force_login(alice)
    headers = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    response = client.get(_project_url(project, source="runner"), headers=headers)
    assert "<html" in response.content.decode()
    # Caches must not hand the fragment to a plain request for the same URL, or vice versa.
    assert "HX-Request" in response["Vary"]


def test_it_tells_a_new_project_how_to_send_its_first_event(client, alice, project, settings):
    client.force_login(alice)
    html = client.get(_project_url(project)).content.decode()
    redis_line = re.search(r'<pre class="command" id="first-event-redis">(.*?)</pre>', html).group(
        1
    )
    port = settings.REDIS_URL.rsplit(":", 1)[1].split("/")[0]
    assert f"-p {port}" in redis_line
    assert "LPUSH session-errors" in redis_line
    assert f"&quot;project_id&quot;:&quot;{project.id}&quot;" in redis_line
    curl_line = re.search(r'id="first-event-curl">(.*?)</pre>', html).group(1)
    assert f"http://testserver/api/v1/projects/{project.id}/events" in curl_line
    assert "Authorization: Bearer &lt;key&gt;" in curl_line


def test_it_drops_the_first_event_help_once_there_are_events(client, alice, project, make_event):
    client.force_login(alice)
    make_event(project, kind=Event.WARNING, code="31002")
    assert "first-event" not in client.get(_project_url(project)).content.decode()


def test_it_sets_a_content_security_policy_on_pages_and_static_files(client, alice, project):
    client.force_login(alice)
    for url in [reverse("login"), reverse("projects"), _project_url(project)]:
        assert client.get(url).headers["Content-Security-Policy"] == CSP


def test_it_serves_the_vendored_htmx_with_the_policy(client):
    for path in ["/static/vendor/htmx.min.js", "/static/vendor/htmx-ext-ws.min.js",
                 "/static/errorsink/app.js"]:  # fmt: skip
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["Content-Security-Policy"] == CSP
    assert b"htmx" in b"".join(client.get("/static/vendor/htmx.min.js").streaming_content)


def test_it_loads_no_inline_script_or_style(client, alice, project, make_event):
    client.force_login(alice)
    make_event(project)
    html = client.get(_project_url(project)).content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert {attrs for attrs, _ in scripts} >= {
        ' src="/static/vendor/htmx.min.js" defer',
        ' src="/static/vendor/htmx-ext-ws.min.js" defer',
        ' src="/static/errorsink/app.js" defer',
    }
    assert all(re.search(r'src="/static/', attrs) and not body for attrs, body in scripts)
    assert "<style" not in html and " style=" not in html
    assert " on" not in re.sub(r"<(?!\w)|[^<]+", "", html)  # no onclick= etc. on any tag


# --- find a session --------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_it_finds_a_session_by_id(client, request, user, project, make_event):
    client.force_login(request.getfixturevalue(user))
    make_event(project, session_id="call/with slash")
    url = reverse("session-list", args=[project.id]) + "?session_id=call/with%20slash"
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == _timeline_url(project, "call/with slash")
    assert client.get(response.url).status_code == 200


def test_it_says_when_there_is_no_such_session(client, alice, project):
    client.force_login(alice)
    url = reverse("session-list", args=[project.id]) + "?session_id=nope"
    response = client.get(url, follow=True)
    # To the sessions that start with it, saying so.
    assert response.redirect_chain[-1][0] == reverse("session-list", args=[project.id]) + "?q=nope"
    assert "No session &#x27;nope&#x27; in this project" in response.content.decode()


def test_it_does_not_find_sessions_for_an_outsider(client, charlie, project, make_event):
    make_event(project, session_id="s1")
    client.force_login(charlie)
    url = reverse("session-list", args=[project.id]) + "?session_id=s1"
    assert client.get(url).status_code == 404


# --- session timeline ------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_it_shows_a_session_timeline_in_time_order(client, request, user, project, session_events):
    client.force_login(request.getfixturevalue(user))
    response = client.get(_timeline_url(project, "call-42"))
    assert response.status_code == 200
    events = response.context["events"]
    assert [e.code for e in events] == [
        "AGENT_HANDLER_FAILED", "31002", "HIGH_PACKET_LOSS", "31004", "USER_BUSY",
    ]  # fmt: skip
    assert [e.offset for e in events] == ["+0:00.000", "+0:10.000", "+0:20.000", "+0:30.000",
                                          "+0:40.000"]  # fmt: skip
    html = response.content.decode()
    for event in events:  # every code has its catalog description and fix
        assert event.code_info is not None
        assert str(event.code_info.description).replace("'", "&#x27;") in html
    assert html.count("Fix:") == 5
    for text in ["486", "Busy Here", "causeCode", "sipReason", "close code", "jitter_ms"]:
        assert text in html
    assert '<details class="stack"><summary>Stack</summary><pre>Error: demo failure' in html
    assert "&quot;userId&quot;: &quot;u_123&quot;" in html


def test_it_shows_why_a_warnings_metrics_were_left_out(client, alice, project, make_event):
    problems = {"mos": "7.2 is above 5", "packet_loss_pct": 'must be a number, got string "<b>"'}
    make_event(project, session_id="s-m", kind="warning", code="31004", item_type="session_warning",
               details={"metrics": {"rtt_ms": 120}, "metric_problems": problems})  # fmt: skip
    client.force_login(alice)
    html = client.get(_timeline_url(project, "s-m")).content.decode()
    shown = re.search(r'<dl class="metrics metric-problems">(.*?)</dl>', html, re.S).group(1)
    assert "<dt>mos</dt><dd>left out of the quality figures: 7.2 is above 5</dd>" in shown
    assert "must be a number, got string &quot;&lt;b&gt;&quot;" in shown
    assert "<dt>rtt_ms</dt><dd>120</dd>" in html


def test_it_says_when_a_hangups_cause_is_the_sdks_default(client, alice, project, make_event):
    termination = {"cause": "USER_BUSY", "cause_code": 17, "sip_code": None}
    make_event(project, session_id="s-h", kind="termination", code="USER_BUSY",
               item_type="sdk_event", details={"sdk": "telnyx", "prevState": "ringing",
                                               "cause_default": "before answer",
                                               "termination": termination})  # fmt: skip
    client.force_login(alice)
    html = client.get(_timeline_url(project, "s-h")).content.decode()
    assert "<dt>defaulted</dt><dd>the SDK&#x27;s cause before answer</dd>" in html


def test_it_cuts_a_runaway_timeline_where_the_api_does_and_says_so(
    client, alice, project, make_event, monkeypatch
):
    from errorsink.sessions import selectors

    monkeypatch.setattr(selectors, "SESSION_EVENTS_MAX", 3)
    start = timezone.now()
    events = [make_event(project, session_id="loop", occurred_at=start + timedelta(seconds=i))
              for i in range(4)]  # fmt: skip
    client.force_login(alice)
    response = client.get(_timeline_url(project, "loop"))
    assert [e.pk for e in response.context["events"]] == [e.pk for e in events[:3]]
    html = response.content.decode()
    assert html.count('class="timeline-event') == 3
    assert "This session has more than 3 events: only the first 3 are shown." in html
    note = re.search(r'<li id="timeline-cut"[^>]*>', html).group(0)
    assert html.index(note) > html.index(f'id="tl-event-{events[2].pk}"')  # last in the list


def test_it_shows_no_note_on_a_timeline_that_is_whole(client, alice, project, session_events):
    client.force_login(alice)
    assert "timeline-cut" not in client.get(_timeline_url(project, "call-42")).content.decode()


def test_it_shows_a_timeline_in_a_fixed_number_of_queries(
    client, alice, project, session_events, django_assert_num_queries
):
    client.force_login(alice)
    # session, user, membership with its project, the events, the session's row
    with django_assert_num_queries(5):
        assert client.get(_timeline_url(project, "call-42")).status_code == 200


def test_it_404s_the_timeline_for_an_outsider(client, charlie, project, session_events):
    client.force_login(charlie)
    assert client.get(_timeline_url(project, "call-42")).status_code == 404


def test_it_404s_an_unknown_session(client, alice, project):
    client.force_login(alice)
    assert client.get(_timeline_url(project, "nope")).status_code == 404


def test_it_links_odd_session_ids_without_breaking_the_page(client, alice, project, make_event):
    client.force_login(alice)
    odd = "a/b?c#d\nnewline <x>"
    make_event(project, session_id=odd)
    html = client.get(_project_url(project)).content.decode()
    href = re.search(r'<td class="session"><a href="([^"]+)"', html).group(1)
    assert client.get(href.replace("&amp;", "&")).context["session_id"] == odd


def test_it_leaves_no_template_syntax_on_the_pages(client, alice, project, session_events):
    client.force_login(alice)
    for url in [_project_url(project), _timeline_url(project, "call-42")]:
        html = client.get(url).content.decode()
        assert not re.search(r"\{[#%{]|[#%}]\}", html), url


# --- escaping --------------------------------------------------------------------------------

HOSTILE = (
    "<script>window.__xss=1</script>"
    '<img src=x onerror="window.__xss=1">'
    '<a href="javascript:window.__xss=1">x</a>'
)


def test_it_escapes_untrusted_text_everywhere(client, alice, project, make_event):
    client.force_login(alice)
    make_event(project, session_id="s-x", message=HOSTILE, stack=HOSTILE, code=HOSTILE[:120],
               build_id=HOSTILE[:100], customer_context={"note": HOSTILE, HOSTILE: 1})  # fmt: skip
    for url in [_project_url(project), _timeline_url(project, "s-x")]:
        html = client.get(url).content.decode()
        assert "<script>window" not in html and "<img src=x" not in html
        assert 'href="javascript:' not in html
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html


# --- quality panel ---------------------------------------------------------------------------


def _quality_events(project, make_event, build_id="b-1"):
    now = timezone.now()
    for n in range(4):
        make_event(project, session_id=f"q{n}", kind=Event.WARNING, code="31002", build_id=build_id,
                   details={"metrics": {"jitter_ms": 40 + n}}, occurred_at=now)  # fmt: skip
    make_event(project, session_id="q9", kind=Event.TERMINATION, code="USER_BUSY",
               details={"termination": {"cause": "USER_BUSY", "sip_code": 486}},
               occurred_at=now)  # fmt: skip
    make_event(project, session_id="q8", kind=Event.TERMINATION, code="PURGE",
               details={"termination": {"cause": "PURGE"}}, occurred_at=now)  # fmt: skip
    roll_up()


def _panel(html: str) -> str:
    start = html.index('<section id="quality-panel"')
    return html[start : html.index("</section>", start)]


def test_the_project_page_shows_how_calls_are_going(client, alice, project, make_event):
    _quality_events(project, make_event)
    client.force_login(alice)
    panel = _panel(client.get(_project_url(project)).content.decode())
    assert 'data-window="24h"' in panel and 'aria-current="page">24 h<' in panel
    # 4 of 6 active sessions had high jitter.
    assert '<p class="big-figure" id="degraded-share">66.7%</p>' in panel
    assert "HIGH_JITTER" in panel and "jitter_ms avg 41.5 · p95 43.0" in panel
    assert re.search(r'<rect class="c0" x="\d+" y="[\d.]+" width="8" height="[\d.]+">', panel)
    assert '<code class="cause">USER_BUSY</code> <span class="muted sip">SIP 486</span>' in panel
    failures = panel[panel.index("Failures") : panel.index("Expected outcomes")]
    assert "PURGE" in failures and "USER_BUSY" not in failures
    assert '<code title="b-1">b-1</code>' in panel


def test_the_panel_window_comes_from_the_url(client, alice, project, make_event):
    _quality_events(project, make_event)
    client.force_login(alice)
    panel = _panel(client.get(_project_url(project, window="1h", code="X")).content.decode())
    assert 'data-window="1h"' in panel and "Warnings per minute" in panel
    assert f'href="{_project_url(project)}?code=X&amp;window=7d"' in panel
    # Anything else is the default window, not an error.
    panel = _panel(client.get(_project_url(project, window="1y")).content.decode())
    assert 'data-window="24h"' in panel


def test_an_empty_window_says_so(client, alice, project):
    client.force_login(alice)
    panel = _panel(client.get(_project_url(project, window="1h")).content.decode())
    assert "No calls in the last 1 h." in panel and "<svg" not in panel


def test_the_panel_escapes_what_clients_sent(client, alice, project, make_event):
    hostile = '<img src=x onerror="alert(1)">'
    _quality_events(project, make_event, build_id=hostile)
    client.force_login(alice)
    panel = _panel(client.get(_project_url(project)).content.decode())
    assert hostile not in panel and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in panel


def test_a_filtered_table_brings_the_panel_out_of_band(client, alice, project, make_event):
    _quality_events(project, make_event)
    client.force_login(alice)
    html = client.get(_project_url(project, code="X", window="7d"), HTTP_HX_REQUEST="true")
    html = html.content.decode()
    assert html.lstrip().startswith('<section id="error-table"')
    assert '<section id="quality-panel"' in html and 'hx-swap-oob="true"' in _panel(html)
    assert "?code=X&amp;window=1h" in _panel(html)


def test_the_panel_costs_a_fixed_number_of_queries(
    client, alice, project, make_event, django_assert_num_queries
):
    _quality_events(project, make_event)
    client.force_login(alice)
    # session, user, membership, errors, watermark, issues (no trends: there are none), 5
    # quality reads (both windows' sessions, the builds' first hours, codes, series, metrics),
    # has-events check, the Sentry key, the alert rules, the settings panel's role, settings
    # and changes, and the latency panel's turn counts (no turns: nothing more): the same
    # however many codes and builds. The window's days before today are kept once merged: two
    # more reads (the kept stretch, today's probe). The errors' read plans without a sort: a
    # setting before it and, inside the test's transaction, its reset after (two statements).
    queries = 20 + kept_stretch_reads("24h")
    client.get(_project_url(project, window="24h"))  # keeps the stretch
    with django_assert_num_queries(queries):
        client.get(_project_url(project, window="24h"))
    for n in range(30):
        make_event(project, session_id=f"more{n}", kind=Event.WARNING, code=f"3100{n % 6}",
                   build_id=f"b{n}")  # fmt: skip
    roll_up()
    client.get(_project_url(project, window="24h"))
    with django_assert_num_queries(queries):
        client.get(_project_url(project, window="24h"))


def test_the_30_day_panel_draws_with_the_page_in_the_same_reads(
    client, alice, project, make_event, django_assert_num_queries
):
    _quality_events(project, make_event)
    client.force_login(alice)
    # The 24-hour page's reads but the has-events check (a filter is set): a month merges day
    # rows, not events, and keeps those before today.
    client.get(_project_url(project, window="30d", code="A%26B"))
    with django_assert_num_queries(19 + kept_stretch_reads("30d")):
        html = client.get(_project_url(project, window="30d", code="A%26B")).content.decode()
    panel = _panel(html)
    assert 'data-window="30d"' in panel and "HIGH_JITTER" in panel and "<svg" in panel
    assert "hx-trigger" not in panel
    assert f'href="{_project_url(project)}?code=A%26B&amp;window=1h"' in panel


# --- what a new user tripped over (issue 11) -------------------------------------------------


def test_the_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response.url.endswith("errorsink/favicon.svg")


def test_an_error_row_shows_arrival_first_and_its_message_once(client, alice, project, make_event):
    now = timezone.now()
    # No message of its own: ingest filled in the catalog's description.
    plain = make_event(project, code="AGENT_CHILD_CRASHED", received_at=now, occurred_at=now,
                       message="Agent child process exited or the bundle failed to load (also "
                       "what legacy agent_error maps to).")  # fmt: skip
    late = make_event(project, message="late one", received_at=now,
                      occurred_at=now - timedelta(hours=1))  # fmt: skip
    client.force_login(alice)
    html = client.get(_project_url(project)).content.decode()
    plain_row = re.search(rf'<tr id="event-{plain.pk}".*?</tr>', html, re.S).group(0)
    assert plain_row.count("bundle failed to load") == 1
    assert 'title="The event brought no message of its own">—' in plain_row
    late_row = re.search(rf'<tr id="event-{late.pk}".*?</tr>', html, re.S).group(0)
    assert "occurred <time" in late_row and " UTC</time>" in late_row
    assert "occurred" not in plain_row


def test_a_timeline_tells_expected_ends_from_failures_in_readable_units(client, alice, project,
                                                                        make_event):  # fmt: skip
    now = timezone.now()
    make_event(
        project,
        session_id="c",
        kind="termination",
        code="NORMAL_CLEARING",
        message="",
        occurred_at=now,
        recoverable=False,
        details={"termination": {"cause": "NORMAL_CLEARING", "duration_ms": 83421}},
    )
    make_event(project, session_id="c", kind="termination", code="PURGE", message="",
               occurred_at=now, recoverable=False)  # fmt: skip
    client.force_login(alice)
    html = client.get(_timeline_url(project, "c")).content.decode()
    assert 'class="badge outcome-expected"' in html and 'class="badge outcome-failure"' in html
    assert 'class="badge fatal"' not in html
    assert "1 min 23 s (83,421 ms)" in html
    assert re.search(r"<time [^>]*>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>", html)


def test_the_project_page_says_how_many_events_the_quota_refused(client, project, bob):
    from errorsink.ingest.queue import redis_client
    from errorsink.projects.quota import quota_refused_key

    client.force_login(bob)
    url = reverse("project", args=[project.id])
    assert 'id="quota-refused"' not in client.get(url).content.decode()
    minute = int(time.time()) // 60
    keys = [quota_refused_key(str(project.id), minute - n) for n in (0, 5, 61)]
    redis_client().mset(dict(zip(keys, (30, 12, 999), strict=True)))  # the last: over an hour
    try:
        html = client.get(url).content.decode()
    finally:
        redis_client().delete(*keys)
    assert "42 events refused in the last hour (the quota is 5000 events a second" in html


# --- a custom range on the page (issue 27) ---------------------------------------------------


def test_the_panel_shows_a_custom_range_and_the_page_keeps_it(client, alice, project, make_event):
    now = timezone.now().replace(second=0, microsecond=0)
    inside, outside = now - timedelta(days=3), now - timedelta(days=6)
    for session_id, moment in (("in1", inside), ("in2", inside), ("out", outside)):
        make_event(project, session_id=session_id, kind=Event.WARNING, code="31002",
                   occurred_at=moment)  # fmt: skip
    roll_up()
    client.force_login(alice)
    start, end = (
        (now - timedelta(days=4)).replace(minute=0),
        (now - timedelta(days=2)).replace(minute=0),
    )
    qfrom, qto = start.strftime("%Y-%m-%dT%H:%M"), end.strftime("%Y-%m-%dT%H:%M")
    html = client.get(_project_url(project, window="custom", qfrom=qfrom, qto=qto,
                                   code="A%26B", q="went")).content.decode()  # fmt: skip
    panel = _panel(html)
    label = f"{start:%b %-d %H:%M} to {end:%b %-d %H:%M} UTC"
    assert f'How calls are going <span class="muted">· {label}</span>' in panel
    assert 'data-window="custom"' in panel and "2 of 2 active sessions" in panel
    assert "Warnings per hour" in panel  # 48 hours: hour bars
    assert f'name="qfrom" value="{qfrom}"' in panel
    # Kept as the reader left it when the socket redraws the panel; closed on load, as it drops
    # down over the page.
    assert re.search(r'<details class="custom-range" id="quality-custom-\w+" hx-preserve>', panel)
    # The error filters' form and the live socket carry the range.
    assert html.count(f'name="qfrom" value="{qfrom}"') == 2  # the panel's form and the filters'
    assert f"qfrom={qfrom.replace(':', '%3A')}" in html and "window=custom" in html
    # The window links and the range's form keep every filter of the page: the words too.
    assert f'href="{_project_url(project)}?q=went&amp;code=A%26B&amp;window=7d"' in panel
    assert '<input type="hidden" name="q" value="went">' in panel


def test_a_custom_range_that_cannot_be_shown_says_why(client, alice, project):
    client.force_login(alice)
    html = client.get(_project_url(project, window="custom", qfrom="2026-12-05T10:00",
                                   qto="2026-12-01T10:00")).content.decode()  # fmt: skip
    panel = _panel(html)
    assert "The custom range was not shown: “To” must be after “From”." in panel
    assert 'data-window="24h"' in panel
    html = client.get(_project_url(project, window="custom", qfrom="yesterday")).content.decode()
    assert "“To” needs a date and a time." in _panel(html)
