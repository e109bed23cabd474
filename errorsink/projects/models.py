"""Projects and who belongs to them, their runner settings and their API keys."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils.text import slugify

DEFAULT_ERROR_MESSAGE = "Sorry, something went wrong."
DEFAULT_IDLE_TIMEOUT_SECONDS = 300
RETENTION_DAYS_MIN = 1
RETENTION_DAYS_MAX = 400


def default_retention_days() -> int:
    """A new project keeps its raw events this many days (ERRORSINK_RETENTION_DAYS, 30 unset).

    Also what the migration gave the projects that existed before retention was per project,
    so an operator's setting kept meaning what it meant on upgrade.
    """
    return settings.ERRORSINK_RETENTION_DAYS


class Project(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects"
    )
    # Raw events older than this are pruned (errorsink/projects/retention.py); rollups outlive them.
    retention_days = models.PositiveSmallIntegerField(default=default_retention_days)
    # Events a second the front door accepts for this project; None: ERRORSINK_INGEST_QUOTA,
    # 0: no limit (errorsink/projects/grants.py).
    ingest_quota = models.PositiveIntegerField(null=True, blank=True)
    # Set when an owner deletes the project: from then on nobody sees it and ingest refuses it,
    # while a background task removes its rows in batches (errorsink/projects/purge.py).
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(retention_days__range=(RETENTION_DAYS_MIN, RETENTION_DAYS_MAX)),
                name="project_retention_days_range",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if not self.slug:
            self.slug = slugify(self.name)[:200] or "project"
        super().save(*args, **kwargs)

    def role_of(self, user) -> str | None:
        membership = self.memberships.filter(user=user).first()
        return membership.role if membership else None


class Membership(models.Model):
    OWNER = "owner"
    MEMBER = "member"
    ROLES = [(OWNER, "Owner"), (MEMBER, "Member")]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=ROLES, default=MEMBER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique")
        ]


class Invitation(models.Model):
    """A single-use link that makes whoever opens it a member of the project (docs/teams.md).

    Only a hash of the link's secret is stored: the link is shown once and mailed once."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Membership.ROLES, default=Membership.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "email"], name="invitation_project_email")]
        constraints = [
            # One live link per person and project, even when two owners invite at once.
            models.UniqueConstraint(
                Lower("email"),
                "project",
                condition=models.Q(accepted_at=None, revoked_at=None),
                name="invitation_one_pending",
            )  # fmt: skip
        ]

    def state(self, now) -> str:
        """pending, accepted, revoked or expired."""
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "pending"


class TeamChange(models.Model):
    """One change to a project's team or to the project itself: who, what, about whom, when."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="team_changes")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=200)
    action = models.CharField(max_length=32)
    subject = models.CharField(max_length=254, blank=True, default="")
    detail = models.CharField(max_length=300, blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["project", "-at"], name="team_change_recent")]

    def describe(self) -> str:
        """What happened, as the sentence that follows the actor's name."""
        subject, detail = self.subject, self.detail
        return {
            "invited": f"invited {subject} {detail}",
            "invitation withdrawn": f"withdrew the invitation to {subject}",
            "joined": f"joined {detail} (invitation to {subject})",
            "role changed": f"changed {subject}'s role ({detail})",
            "removed": f"removed {subject}",
            "left": "left the project",
            "renamed": f"renamed the project ({detail})",
            "asked for a new link": f"(someone with the link for {subject}) asked for a new one",
            "deleted the project": "deleted the project",
            "created the project": "created the project",
        }.get(self.action, f"{self.action} {subject} {detail}".strip())


class SessionSettings(models.Model):
    """Per-project runner settings, applied on the next deploy (docs/session-settings.md)."""

    project = models.OneToOneField(
        Project, on_delete=models.CASCADE, related_name="session_settings"
    )
    error_message = models.CharField(max_length=500, default=DEFAULT_ERROR_MESSAGE)
    idle_timeout_seconds = models.IntegerField(default=DEFAULT_IDLE_TIMEOUT_SECONDS)
    updated_at = models.DateTimeField(auto_now=True)

    def deploy_env(self) -> dict[str, str]:
        return {
            "AGENT_CRASH_TTS_MESSAGE": self.error_message,
            "AGENT_IDLE_TIMEOUT_SECONDS": str(self.idle_timeout_seconds),
        }


class SettingsChange(models.Model):
    """One changed field of the session settings: who, from what, to what, when."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="settings_changes")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor = models.CharField(max_length=200)
    field = models.CharField(max_length=64)
    old_value = models.TextField()
    new_value = models.TextField()
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["project", "-changed_at"], name="settings_change_recent")]


class ApiKey(models.Model):
    SCOPES = ["errors:read", "errors:write", "settings:read", "settings:write"]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True, default="")
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
