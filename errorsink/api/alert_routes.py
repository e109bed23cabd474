"""A project's alert rules (docs/alerts.md): listed with `settings:read`, created, changed
and deleted with `settings:write`. The body schemas are errorsink/alerts/rules.py's, shared with
the dashboard form, so both refuse the same input in the same words."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from django.db import transaction
from django.http import HttpRequest
from ninja import Path, Router, Schema, Status

from errorsink.alerts.evaluate import rule_firing_now
from errorsink.alerts.models import AlertRule
from errorsink.alerts.rules import RuleIn, RuleInvalid, RulePatch, rule_create, rule_update
from errorsink.api.auth import KeyAuth
from errorsink.api.errors import ApiError
from errorsink.api.routes import api_errors

router = Router(tags=["alerts"])
RuleId = Annotated[int, Path(..., ge=1, le=2**63 - 1)]


class RuleOut(Schema):
    id: int
    name: str
    condition: dict[str, Any]
    channels: list[dict[str, Any]]
    cooldown_seconds: int
    muted: bool
    firing: bool
    last_fired_at: datetime | None
    last_value: float | None
    created_at: datetime
    updated_at: datetime


class RulesOut(Schema):
    rules: list[RuleOut]


def rule_out(rule: AlertRule) -> dict:
    return {
        "id": rule.id, "name": rule.name, "condition": rule.condition, "channels": rule.channels,
        "cooldown_seconds": rule.cooldown_seconds, "muted": rule.muted,
        "firing": rule_firing_now(rule), "last_fired_at": rule.last_fired_at,
        "last_value": rule.last_value, "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }  # fmt: skip


def _rule_or_404(request: HttpRequest, rule_id: int) -> AlertRule:
    rule = AlertRule.objects.filter(project=request.auth.project, id=rule_id).first()
    if rule is None:
        raise ApiError(404, "No such alert rule")
    return rule


def _invalid(exc: RuleInvalid) -> ApiError:
    field, _, message = str(exc).partition(": ")
    return ApiError(422, str(exc), details={field: message})


@router.get(
    "/projects/{project_id}/alert-rules",
    response={200: RulesOut, **api_errors(403, 404)},
    auth=KeyAuth("settings:read"),
    summary="The project's alert rules, with whether each is firing now",
)
def alert_rules_list(request: HttpRequest, project_id: str):
    rules = AlertRule.objects.filter(project=request.auth.project).order_by("id")
    return {"rules": [rule_out(rule) for rule in rules]}


@router.post(
    "/projects/{project_id}/alert-rules",
    response={201: RuleOut, **api_errors(400, 403, 404, 422)},
    auth=KeyAuth("settings:write"),
    summary="Create an alert rule",
    description="Conditions: event_count (more than `threshold` errors in `window_seconds`, "
    "optionally of one `code` or `issue_id`), new_issue, regression, degraded_share (at least "
    "`threshold` of the sessions started in `window_seconds` degraded, once `min_sessions` have "
    "started). Channels: webhook, slack, email. Windows run from 60 s to 24 h.",
)
def alert_rule_create(request: HttpRequest, project_id: str, rule: RuleIn):
    try:
        with transaction.atomic():
            return Status(201, rule_out(rule_create(project=request.auth.project, data=rule)))
    except RuleInvalid as exc:
        raise _invalid(exc) from None


@router.patch(
    "/projects/{project_id}/alert-rules/{rule_id}",
    response={200: RuleOut, **api_errors(400, 403, 404, 422)},
    auth=KeyAuth("settings:write"),
    summary="Change an alert rule (or mute it with `muted: true`)",
    description="A changed condition starts counting afresh.",
)
def alert_rule_patch(request: HttpRequest, project_id: str, rule_id: RuleId, change: RulePatch):
    rule = _rule_or_404(request, rule_id)
    try:
        with transaction.atomic():
            return rule_out(rule_update(rule=rule, patch=change))
    except RuleInvalid as exc:
        raise _invalid(exc) from None


@router.delete(
    "/projects/{project_id}/alert-rules/{rule_id}",
    response={204: None, **api_errors(403, 404, 422)},
    auth=KeyAuth("settings:write"),
    summary="Delete an alert rule and its history",
)
def alert_rule_delete(request: HttpRequest, project_id: str, rule_id: RuleId):
    _rule_or_404(request, rule_id).delete()
    return Status(204, None)
