from django.contrib.auth import views as auth_views
from django.urls import path

import dashboard.converters  # noqa: F401  (registers <session_id:...>)
from dashboard import (
    alert_views,
    dead_letter_views,
    demo_views,
    issue_views,
    sentry_views,
    session_list_views,
    views,
)

urlpatterns = [
    path("", views.projects, name="projects"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("projects/<uuid:project_id>/", views.project, name="project"),
    path("projects/<uuid:project_id>/demo/", demo_views.demo_load_view, name="demo-load"),
    path(
        "projects/<uuid:project_id>/sentry-key/rotate/",
        sentry_views.sentry_key_rotate_view,
        name="sentry-key-rotate",
    ),
    path(
        "projects/<uuid:project_id>/sessions/",
        session_list_views.session_list,
        name="session-list",
    ),
    path("projects/<uuid:project_id>/issues/<int:issue_id>/", issue_views.issue_page, name="issue"),
    path(
        "projects/<uuid:project_id>/dead-letters/",
        dead_letter_views.dead_letters,
        name="dead-letters",
    ),
    path(
        "projects/<uuid:project_id>/dead-letters/act/",
        dead_letter_views.dead_letters_act,
        name="dead-letters-act",
    ),
    path(
        "projects/<uuid:project_id>/issues/<int:issue_id>/status/",
        issue_views.issue_status_change,
        name="issue-status-change",
    ),
    path("projects/<uuid:project_id>/alerts/", alert_views.alert_rules, name="alert-rules"),
    path(
        "projects/<uuid:project_id>/alerts/new/", alert_views.alert_rule_new, name="alert-rule-new"
    ),
    path(
        "projects/<uuid:project_id>/alerts/<int:rule_id>/",
        alert_views.alert_rule,
        name="alert-rule",
    ),
    path(
        "projects/<uuid:project_id>/alerts/<int:rule_id>/edit/",
        alert_views.alert_rule_edit,
        name="alert-rule-edit",
    ),
    path(
        "projects/<uuid:project_id>/alerts/<int:rule_id>/act/",
        alert_views.alert_rule_act,
        name="alert-rule-act",
    ),
    path(
        "projects/<uuid:project_id>/sessions/<session_id:session_id>/",
        views.session_timeline,
        name="session-timeline",
    ),
]
