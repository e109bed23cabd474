"""The dashboard's pages: the user's projects, a project's latest errors, a session's timeline."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.vary import vary_on_headers

from dashboard.access import get_membership_or_404
from dashboard.demo_views import demo_offer
from dashboard.latency_panel import latency_panel_html
from dashboard.present import (
    first_event_commands,
    live_url,
    sparkline_points,
    timeline_annotate,
)
from dashboard.quality_panel import panel_html, window_read
from dashboard.sentry_views import sentry_panel
from dashboard.triage import RANGE_PRESETS, errors_list, filters_read, issue_table_html
from errorsink import catalog
from errorsink.alerts.evaluate import alerts_firing
from errorsink.catalog import SOURCES
from errorsink.ingest.dead_letters import project_dead_letter_count
from errorsink.projects.models import Membership
from errorsink.projects.quota import quota_effective, quota_refused_last_hour
from errorsink.projects.services import projects_for_user
from errorsink.quality.rollups import rollups_watermark
from errorsink.sessions import selectors
from errorsink.turns.reads import timeline_folded


@login_required
def projects(request: HttpRequest) -> HttpResponse:
    rows = list(projects_for_user(user=request.user))
    activity = selectors.projects_activity_24h(project_ids=[project.id for project in rows])
    for project in rows:
        project.activity = activity[project.id]
        project.error_points = sparkline_points(project.activity.errors_by_hour)
        project.warning_points = sparkline_points(project.activity.warnings_by_hour)
    return render(request, "dashboard/projects.html", {"projects": rows})


def _wants_fragment(request: HttpRequest) -> bool:
    # htmx restoring history (Back after the cache expired) needs the whole page, not the part.
    htmx = request.htmx
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


SORT_CHOICES = [("last_seen", "newest activity"), ("count", "most events"),
                ("sessions", "most sessions")]  # fmt: skip


@login_required
@vary_on_headers("HX-Request")
def project(request: HttpRequest, project_id) -> HttpResponse:
    membership = get_membership_or_404(request, project_id)
    project = membership.project
    filters = filters_read(request.GET)
    window = window_read(request.GET)
    errors = errors_list(project_id=project.id, filters=filters)
    # Read before the panel: the socket redraws it if the rollups moved since (a reconnect).
    drawn = str(rollups_watermark())
    context = {
        "project": project,
        "events": errors.items,
        "errors_next": errors.next,
        "errors_older": filters.url("", cursor=errors.next or ""),
        "filters_newest": filters.url(""),
        "filters": filters,
        "window": window,
        "sources": SOURCES,
        "range_presets": RANGE_PRESETS,
        "sort_choices": SORT_CHOICES,
        "codes": sorted({info.code for info in catalog.all_codes() if info.kind == "error"}),
        "live_url": live_url(
            f"/ws/projects/{project.id}/", **{**filters.params, **window.params, "rollups": drawn}
        ),
        "issue_table": issue_table_html(project=project, filters=filters),
    }
    fragment = _wants_fragment(request)
    # A filtered table comes with the panel out of band: its window links carry the filters.
    context["quality_panel"] = panel_html(
        project_id=project.id, window=window, params=filters.params, oob=fragment
    )
    context["latency_panel"] = (
        "" if fragment else latency_panel_html(project_id=project.id, window=window, oob=False)
    )
    if fragment:
        response = render(request, "dashboard/project.html#error-table", context)
        response.write(context["quality_panel"])
        response.write(issue_table_html(project=project, filters=filters, oob=True))
        return response
    if (
        not errors.items
        and not filters.any_set
        and not filters.paged
        and not (selectors.project_has_events(project_id=project.id))
    ):
        context["first_event"] = first_event_commands(
            project_id=project.id, base_url=request.build_absolute_uri("/")
        )
        context["demo_offer"] = demo_offer(request=request, project=project)
    context["api_keys_url"] = reverse("api-keys", args=[project.id])
    context["sentry"] = sentry_panel(request=request, project=project)
    context["is_owner"] = membership.role == Membership.OWNER
    context["alerts_firing"] = alerts_firing(project=project)
    context["quota_refused"] = quota_refused_last_hour(project_id=project.id)
    context["quota"] = quota_effective(project.ingest_quota)
    if membership.role == Membership.OWNER:
        context["dead_letters"] = project_dead_letter_count(project_id=project.id)
    return render(request, "dashboard/project.html", context)


@login_required
def session_timeline(request: HttpRequest, project_id, session_id: str) -> HttpResponse:
    project = get_membership_or_404(request, project_id).project
    timeline = selectors.session_events(project_id=project.id, session_id=session_id,
                                        with_turns=True)  # fmt: skip
    if not timeline.events:
        raise Http404("No such session")
    # Folded, a session of stage spans alone (their turn not yet come) shows no row: the
    # session still starts at its first event.
    started_at = timeline.events[0].occurred_at
    events = timeline_folded(timeline.events, project_id=project.id)
    timeline_annotate(events, start=started_at)
    ws_path = reverse("session-timeline", args=[project.id, session_id])
    context = {
        "project": project,
        "session_id": session_id,
        "session": selectors.session_get(project_id=project.id, session_id=session_id),
        "events": events,
        "timeline": timeline,
        "started_at": started_at,
        "live_url": f"/ws{ws_path}",
    }
    return render(request, "dashboard/session.html", context)
