"""A project's alert rules (docs/alerts.md): every member sees them, which are firing, and each
rule's history; owners create, edit, mute, delete and send a test. The form is read into the
API's own schema (errorsink/alerts/rules.py), so both refuse the same input in the same words."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from pydantic import ValidationError

from dashboard.access import get_membership_or_404, get_owner_membership
from dashboard.links import ReversedLinks
from errorsink.alerts.evaluate import firing_record, rule_firing_now
from errorsink.alerts.models import AlertDelivery, AlertFiring, AlertRule
from errorsink.alerts.rules import (
    RuleIn,
    RuleInvalid,
    RulePatch,
    duration_words,
    rule_create,
    rule_describe,
    rule_update,
)
from errorsink.projects.models import Membership
from errorsink.tasks import deliveries_start

HISTORY_SHOWN = 30
TYPES = [
    ("event_count", "More than N errors in a window"),
    ("new_issue", "A new issue appears"),
    ("regression", "A resolved issue regresses"),
    ("degraded_share", "A share of sessions is degraded"),
    ("latency_p95", "Callers wait too long (latency p95)"),
]
STAGE_CHOICES = [("voice_to_voice", "voice-to-voice"), ("stt", "speech to text"),
                 ("llm", "LLM first token"), ("tts", "TTS first byte"),
                 ("end_of_turn", "end of turn")]  # fmt: skip


def _rule_page_context(membership: Membership) -> dict:
    return {"project": membership.project, "is_owner": membership.role == Membership.OWNER,
            "types": TYPES, "stages": STAGE_CHOICES}  # fmt: skip


def _owner(request: HttpRequest, project_id) -> Membership:
    return get_owner_membership(request, project_id, "change its alert rules")


def _rule_or_404(project, rule_id: int) -> AlertRule:
    rule = AlertRule.objects.filter(project=project, id=rule_id).first()
    if rule is None:
        raise Http404("No such alert rule")
    return rule


def _rule_view(rule: AlertRule, now) -> dict:
    return {"rule": rule, "description": rule_describe(rule.condition),
            "firing": rule_firing_now(rule, now),
            "cooldown": duration_words(rule.cooldown_seconds)}  # fmt: skip


@login_required
def alert_rules(request: HttpRequest, project_id) -> HttpResponse:
    membership = get_membership_or_404(request, project_id)
    context = {**_rules_context(membership), "form": form_initial()}
    return render(request, "dashboard/alerts.html", context)


def _rules_context(membership: Membership) -> dict:
    now = timezone.now()
    rules = AlertRule.objects.filter(project=membership.project).order_by("id")
    return {**_rule_page_context(membership), "rules": [_rule_view(r, now) for r in rules]}


@login_required
@require_POST
def alert_rule_new(request: HttpRequest, project_id) -> HttpResponse:
    membership = _owner(request, project_id)
    try:
        with transaction.atomic():
            rule = rule_create(project=membership.project, data=RuleIn(**rule_from_form(
                request.POST)))  # fmt: skip
    except (ValidationError, RuleInvalid, FormInvalid) as exc:
        context = {**_rules_context(membership), "form": request.POST,
                   "form_errors": form_errors(exc)}  # fmt: skip
        return render(request, "dashboard/alerts.html", context, status=422)
    messages.success(request, f"Created the rule “{rule.name}”.")
    return redirect("alert-rule", membership.project.id, rule.id)


@login_required
def alert_rule(request: HttpRequest, project_id, rule_id: int) -> HttpResponse:
    membership = get_membership_or_404(request, project_id)
    rule = _rule_or_404(membership.project, rule_id)
    return render(request, "dashboard/alert_rule.html", _rule_context(membership, rule))


def _rule_context(membership: Membership, rule: AlertRule, **extra) -> dict:
    deliveries = Prefetch("deliveries", AlertDelivery.objects.order_by("id"))
    firings = (AlertFiring.objects.filter(rule=rule).order_by("-fired_at", "-id")
               .prefetch_related(deliveries)[:HISTORY_SHOWN])  # fmt: skip
    return {**_rule_page_context(membership), **_rule_view(rule, timezone.now()),
            "firings": firings, "form": extra.pop("form", None) or form_initial(rule),
            **extra}  # fmt: skip


@login_required
@require_POST
def alert_rule_edit(request: HttpRequest, project_id, rule_id: int) -> HttpResponse:
    membership = _owner(request, project_id)
    rule = _rule_or_404(membership.project, rule_id)
    try:
        with transaction.atomic():
            rule_update(rule=rule, patch=RulePatch(**rule_from_form(request.POST)))
    except (ValidationError, RuleInvalid, FormInvalid) as exc:
        rule.refresh_from_db()
        context = _rule_context(membership, rule, form=request.POST, form_errors=form_errors(exc))
        return render(request, "dashboard/alert_rule.html", context, status=422)
    messages.success(request, "Saved. A changed condition starts counting afresh.")
    return redirect("alert-rule", membership.project.id, rule.id)


@login_required
@require_POST
def alert_rule_act(request: HttpRequest, project_id, rule_id: int) -> HttpResponse:
    membership = _owner(request, project_id)
    rule = _rule_or_404(membership.project, rule_id)
    action = request.POST.get("action", "")
    if action == "delete":
        rule.delete()
        messages.success(request, f"Deleted the rule “{rule.name}” and its history.")
        return redirect("alert-rules", membership.project.id)
    if action in ("mute", "unmute"):
        rule.muted = action == "mute"
        rule.save(update_fields=["muted", "updated_at"])
        messages.success(request, "Muted: it will not fire until unmuted." if rule.muted
                         else "Unmuted: it fires again when its condition holds.")  # fmt: skip
    elif action == "test":
        with transaction.atomic():
            _, deliveries = firing_record(rule, value=0, sample=[], now=timezone.now(),
                                          links=ReversedLinks(), test=True)  # fmt: skip
            deliveries_start(deliveries)
        messages.success(request, "Test sent to every channel; its deliveries show below.")
    else:
        messages.error(request, "Choose mute, unmute, test or delete.")
    return redirect("alert-rule", membership.project.id, rule.id)


# --- The form: flat fields in, the API's JSON shape out ----------------------------------------


class FormInvalid(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def form_initial(rule: AlertRule | None = None) -> dict:
    """The form's fields for a rule (or the defaults of a new one)."""
    if rule is None:
        return {"type": "event_count", "threshold": "10", "window_minutes": "5",
                "share_percent": "20", "min_sessions": "20", "cooldown_minutes": "10",
                "stage": "voice_to_voice", "threshold_ms": "1500", "min_turns": "20"}  # fmt: skip
    condition, channels = rule.condition, rule.channels
    by_type = {channel["type"]: channel for channel in channels}
    share = condition.get("threshold") if rule.kind == "degraded_share" else None
    return {
        "name": rule.name, "type": rule.kind,
        "threshold": str(condition.get("threshold", "")) if share is None else "10",
        "window_minutes": str(condition.get("window_seconds", 300) // 60),
        "code": condition.get("code", ""), "issue_id": str(condition.get("issue_id") or ""),
        "share_percent": f"{share * 100:g}" if share is not None else "20",
        "min_sessions": str(condition.get("min_sessions", 20)),
        "stage": condition.get("stage", "voice_to_voice"),
        "threshold_ms": f"{condition.get('threshold_ms', 1500):g}",
        "min_turns": str(condition.get("min_turns", 20)),
        "webhook_url": by_type.get("webhook", {}).get("url", ""),
        "slack_url": by_type.get("slack", {}).get("url", ""),
        "email_to": ", ".join(by_type.get("email", {}).get("to", [])),
        "cooldown_minutes": f"{rule.cooldown_seconds / 60:g}",
    }  # fmt: skip


def rule_from_form(form) -> dict:
    """The rule as the API takes it, from the form's flat fields; numbers that are not numbers
    are refused here, everything else by the schema."""
    errors: dict[str, str] = {}
    kind = form.get("type", "")
    condition: dict = {"type": kind}
    if kind in ("event_count", "degraded_share", "latency_p95"):
        condition["window_seconds"] = _number(form, "window_minutes", errors, scale=60)
    if kind == "latency_p95":
        condition["stage"] = form.get("stage", "voice_to_voice")
        condition["threshold_ms"] = _number(form, "threshold_ms", errors, integer=False)
        condition["min_turns"] = _number(form, "min_turns", errors)
    if kind == "event_count":
        condition["threshold"] = _number(form, "threshold", errors)
        if form.get("code", "").strip():
            condition["code"] = form["code"].strip()
        if form.get("issue_id", "").strip():
            condition["issue_id"] = _number(form, "issue_id", errors)
    if kind == "degraded_share":
        percent = _number(form, "share_percent", errors, integer=False)
        condition["threshold"] = percent / 100 if percent is not None else None
        condition["min_sessions"] = _number(form, "min_sessions", errors)
    channels = _channels(form)
    if errors:
        raise FormInvalid(errors)
    rule = {"condition": condition, "channels": channels,
            "cooldown_seconds": _number(form, "cooldown_minutes", errors, scale=60)}  # fmt: skip
    if errors:
        raise FormInvalid(errors)
    if form.get("name", "").strip():
        rule["name"] = form["name"].strip()
    return rule


def _channels(form) -> list[dict]:
    channels = []
    if form.get("webhook_url", "").strip():
        channels.append({"type": "webhook", "url": form["webhook_url"].strip()})
    if form.get("slack_url", "").strip():
        channels.append({"type": "slack", "url": form["slack_url"].strip()})
    recipients = [a.strip() for a in form.get("email_to", "").replace(";", ",").split(",")]
    if any(recipients):
        channels.append({"type": "email", "to": [a for a in recipients if a]})
    return channels


def _number(form, field: str, errors: dict, *, scale: int = 1, integer: bool = True):
    text = form.get(field, "").strip()
    try:
        value = float(text) * scale
    except ValueError:
        errors[field] = f"{_LABELS.get(field, field)}: a number, please"
        return None
    if integer:
        if value != int(value):
            errors[field] = f"{_LABELS.get(field, field)}: a whole number, please"
            return None
        return int(value)
    return value


_LABELS = {
    "type": "Condition", "threshold": "Threshold", "window_minutes": "Window",
    "issue_id": "Issue", "share_percent": "Degraded share", "min_sessions": "Minimum sessions",
    "stage": "Stage", "threshold_ms": "Latency", "min_turns": "Minimum turns",
    "cooldown_minutes": "Cooldown", "channels": "Channels", "name": "Name", "code": "Code",
    "webhook_url": "Webhook URL", "slack_url": "Slack URL", "email_to": "Email recipients",
}  # fmt: skip
# Where the schema's field names and units differ from the form's.
_SCHEMA_TO_FORM = {"window_seconds": "window_minutes", "cooldown_seconds": "cooldown_minutes",
                   "condition": "type"}  # fmt: skip


def form_errors(exc: Exception) -> dict[str, str]:
    """Field → message, in the form's words and units."""
    if isinstance(exc, FormInvalid):
        return exc.errors
    if isinstance(exc, RuleInvalid):
        return {"issue_id": f"Issue: {str(exc).partition(': ')[2]}"}
    errors: dict[str, str] = {}
    for error in exc.errors():
        field = _form_field([str(part) for part in error["loc"]])
        errors.setdefault(field, f"{_LABELS.get(field, field)}: {_in_form_units(field, error)}")
    return errors


def _form_field(location: list[str]) -> str:
    for channel, field in (("webhook", "webhook_url"), ("slack", "slack_url"),
                           ("email", "email_to")):  # fmt: skip
        if channel in location:
            return field
    if "degraded_share" in location and location[-1] == "threshold":
        return "share_percent"
    return _SCHEMA_TO_FORM.get(location[-1], location[-1])


def _in_form_units(field: str, error: dict) -> str:
    context = error.get("ctx", {})
    if field in ("window_minutes", "cooldown_minutes") and {"ge", "le"} & set(context):
        bound = context.get("ge", context.get("le"))
        word = "at least" if "ge" in context else "at most"
        return f"{word} {bound / 60:g} minutes"
    if field == "share_percent":
        return "between 0 and 100 %"
    if field == "channels" and error["type"] == "too_short":
        return "give at least one: a webhook URL, a Slack URL or an email address"
    if field in ("webhook_url", "slack_url") and "url" in error["type"]:
        return "an http:// or https:// URL, please"
    if error["type"] == "value_error":  # our own check's sentence, without pydantic's prefix
        return str(error["ctx"]["error"])
    return error["msg"]
