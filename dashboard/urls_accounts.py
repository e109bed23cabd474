"""Accounts and teams: invitations, sign-up, passwords, single sign-on and the members page
(docs/teams.md)."""

from allauth.socialaccount import views as socialaccount_views
from allauth.urls import build_provider_urlpatterns
from django.contrib.auth import views as auth_views
from django.urls import include, path, reverse_lazy
from django.views.generic import RedirectView

from dashboard import account_views, team_views

_password = [
    path("account/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "account/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),  # fmt: skip
    path("password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),  # fmt: skip
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),  # fmt: skip
    path(
        "password-reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),  # fmt: skip
]

_team = [
    path("projects/new/", team_views.project_new, name="project-new"),
    path("projects/<uuid:project_id>/members/", team_views.members, name="members"),
    path(
        "projects/<uuid:project_id>/members/invite/", team_views.member_invite, name="member-invite"
    ),  # fmt: skip
    path(
        "projects/<uuid:project_id>/members/<int:member_id>/role/",
        team_views.member_role,
        name="member-role",
    ),  # fmt: skip
    path(
        "projects/<uuid:project_id>/members/<int:member_id>/remove/",
        team_views.member_remove_view,
        name="member-remove",
    ),  # fmt: skip
    path(
        "projects/<uuid:project_id>/invitations/<int:invitation_id>/withdraw/",
        team_views.invitation_withdraw,
        name="invitation-withdraw",
    ),  # fmt: skip
    path("projects/<uuid:project_id>/leave/", team_views.project_leave, name="project-leave"),
    path(
        "projects/<uuid:project_id>/rename/", team_views.project_rename_view, name="project-rename"
    ),  # fmt: skip
    path(
        "projects/<uuid:project_id>/delete/", team_views.project_delete_view, name="project-delete"
    ),  # fmt: skip
]

_invitations = [
    path("invite/<str:token>/", account_views.invitation, name="invitation"),
    path("invite/<str:token>/renew/", account_views.invitation_renew, name="invitation-renew"),
    path("signup/", account_views.signup, name="signup"),
]

# django-allauth for single sign-on only: a provider's sign-in and callback, and the pages it
# shows when a sign-in fails or needs more. Its own sign-in page leads to errorsink's.
_sso = [
    path(
        "accounts/login/",
        RedirectView.as_view(url=reverse_lazy("login"), query_string=True),
        name="account_login",
    ),  # fmt: skip
    path(
        "accounts/3rdparty/login/cancelled/",
        socialaccount_views.login_cancelled,
        name="socialaccount_login_cancelled",
    ),  # fmt: skip
    path(
        "accounts/3rdparty/login/error/",
        socialaccount_views.login_error,
        name="socialaccount_login_error",
    ),  # fmt: skip
    path("accounts/3rdparty/signup/", socialaccount_views.signup, name="socialaccount_signup"),
    path("accounts/", include(build_provider_urlpatterns())),
]

urlpatterns = _password + _team + _invitations + _sso
