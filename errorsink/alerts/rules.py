"""Alert rules as users write them (docs/alerts.md): one typed schema for the API and the
dashboard form, so both refuse the same input with the same words, and nothing is saved that
the evaluator could not run.
"""

from __future__ import annotations

from typing import Annotated, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from errorsink.alerts.models import (
    COOLDOWN_DEFAULT_SECONDS,
    DEGRADED_SHARE,
    EVENT_COUNT,
    LATENCY_P95,
    NEW_ISSUE,
    REGRESSION,
    AlertRule,
)
from errorsink.alerts.outbound import url_problem
from errorsink.issues.models import Issue
from errorsink.projects.models import Project

WINDOW_MIN_SECONDS = 60
WINDOW_MAX_SECONDS = 24 * 3600
# Above this an event-count rule could never fire on one project's traffic: a typo, refused.
THRESHOLD_MAX = 10_000_000
Window = Annotated[
    int,
    Field(
        ge=WINDOW_MIN_SECONDS,
        le=WINDOW_MAX_SECONDS,
        description="Seconds, from 60 (1 minute) to 86400 (24 hours)",
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventCountCondition(_Strict):
    type: Literal["event_count"]
    threshold: int = Field(ge=0, le=THRESHOLD_MAX, description="Fires on MORE than this many")
    window_seconds: Window
    code: str | None = Field(None, min_length=1, max_length=128, description="Only this code")
    issue_id: int | None = Field(None, ge=1, le=2**63 - 1, description="Only this issue")


class NewIssueCondition(_Strict):
    type: Literal["new_issue"]


class RegressionCondition(_Strict):
    type: Literal["regression"]


class DegradedShareCondition(_Strict):
    type: Literal["degraded_share"]
    threshold: float = Field(gt=0, le=1, description="Fires at this share of degraded sessions")
    window_seconds: Window
    min_sessions: int = Field(
        20, ge=1, le=1_000_000, description="Sessions started in the window before it can fire"
    )


# A turn's stages as the latency figures name them (errorsink/turns/figures.py), in words.
STAGES = {
    "voice_to_voice": "voice-to-voice",
    "stt": "speech to text",
    "llm": "LLM first token",
    "tts": "TTS first byte",
    "end_of_turn": "end of turn",
}


class LatencyP95Condition(_Strict):
    type: Literal["latency_p95"]
    stage: Literal["voice_to_voice", "stt", "llm", "tts", "end_of_turn"] = Field(
        "voice_to_voice", description="Which wait: the whole turn's or one stage's"
    )
    threshold_ms: float = Field(gt=0, le=3_600_000,
                                description="Fires when the window's p95 reaches this")  # fmt: skip
    window_seconds: Window
    min_turns: int = Field(
        20, ge=1, le=1_000_000, description="Turns measured in the window before it can fire"
    )


Condition = Annotated[
    EventCountCondition
    | NewIssueCondition
    | RegressionCondition
    | DegradedShareCondition
    | LatencyP95Condition,
    Field(discriminator="type"),
]


def _public(url: AnyHttpUrl) -> AnyHttpUrl:
    problem = url_problem(str(url))
    if problem is not None:
        raise ValueError(f"the URL {problem}")
    return url


# A URL errorsink may POST to: http(s), a public address (errorsink/alerts/outbound.py).
PublicUrl = Annotated[AnyHttpUrl, AfterValidator(_public)]


class WebhookChannel(_Strict):
    type: Literal["webhook"]
    url: PublicUrl = Field(description="http(s) on a public address; receives the JSON body as "
                           "a POST")  # fmt: skip


class SlackChannel(_Strict):
    type: Literal["slack"]
    url: PublicUrl = Field(description="A Slack incoming-webhook URL")


class EmailChannel(_Strict):
    type: Literal["email"]
    to: list[str] = Field(min_length=1, max_length=20)

    @field_validator("to")
    @classmethod
    def _addresses(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            try:
                validate_email(address)
            except DjangoValidationError:
                raise ValueError(f"{address!r} is not an email address") from None
        return addresses


Channel = Annotated[WebhookChannel | SlackChannel | EmailChannel, Field(discriminator="type")]
Name = Annotated[str, Field(min_length=1, max_length=120)]
Cooldown = Annotated[int, Field(ge=10, le=7 * 24 * 3600,
                                description="Seconds between two firings of the rule")]  # fmt: skip


class RuleIn(_Strict):
    name: Name | None = None
    condition: Condition
    channels: list[Channel] = Field(min_length=1, max_length=10)
    cooldown_seconds: Cooldown = COOLDOWN_DEFAULT_SECONDS
    muted: bool = False


class RulePatch(_Strict):
    name: Name | None = None
    condition: Condition | None = None
    channels: list[Channel] | None = Field(None, min_length=1, max_length=10)
    cooldown_seconds: Cooldown | None = None
    muted: bool | None = None


class RuleInvalid(ValueError):
    """A rule that validates as a shape but not against the project (an issue of another)."""


def rule_create(*, project: Project, data: RuleIn) -> AlertRule:
    rule = AlertRule(project=project)
    _rule_fill(rule, data.model_dump(mode="json", exclude_none=True))
    rule.save()
    return rule


def rule_update(*, rule: AlertRule, patch: RulePatch) -> AlertRule:
    changes = patch.model_dump(mode="json", exclude_unset=True)
    condition_changed = "condition" in changes and changes["condition"] != rule.condition
    _rule_fill(rule, changes)
    if condition_changed:
        # Counted for the old condition: the new one starts from nothing, as a new rule would.
        rule.holding, rule.last_value = False, None
        rule.alertcount_set.all().delete()
    rule.save()
    return rule


def _rule_fill(rule: AlertRule, values: dict) -> None:
    if "condition" in values:
        condition = {k: v for k, v in values["condition"].items() if v is not None}
        rule.condition, rule.kind = condition, condition["type"]
        rule.issue_fingerprint = _issue_fingerprint(rule.project_id, condition.get("issue_id"))
    for field in ("channels", "cooldown_seconds", "muted"):
        if field in values:
            setattr(rule, field, values[field])
    if values.get("name"):
        rule.name = values["name"]
    elif not rule.name:
        rule.name = rule_describe(rule.condition)


def _issue_fingerprint(project_id, issue_id: int | None):
    if issue_id is None:
        return None
    issue = Issue.objects.filter(project_id=project_id, id=issue_id).only("fingerprint").first()
    if issue is None:
        raise RuleInvalid(f"condition.issue_id: no issue {issue_id} in this project")
    return issue.fingerprint


def rule_describe(condition: dict) -> str:
    """The condition in words, as the rule's default name and on its page."""
    kind = condition["type"]
    if kind == EVENT_COUNT:
        which = " errors"
        if condition.get("code"):
            which = f" {condition['code']} errors"
        if condition.get("issue_id"):
            which = f" errors of issue #{condition['issue_id']}"
        return (f"More than {condition['threshold']}{which} in "
                f"{duration_words(condition['window_seconds'])}")  # fmt: skip
    if kind == DEGRADED_SHARE:
        return (f"{condition['threshold']:.0%} of sessions degraded in "
                f"{duration_words(condition['window_seconds'])} "
                f"(at least {condition.get('min_sessions', 20)} sessions)")  # fmt: skip
    if kind == LATENCY_P95:
        stage = STAGES[condition.get("stage", "voice_to_voice")]
        stage = stage[0].upper() + stage[1:]
        return (f"{stage} p95 of {condition['threshold_ms']:,.0f} ms or more in "
                f"{duration_words(condition['window_seconds'])} "
                f"(at least {condition.get('min_turns', 20)} turns)")  # fmt: skip
    return {NEW_ISSUE: "A new issue", REGRESSION: "A resolved issue regresses"}[kind]


def duration_words(seconds: int) -> str:
    """60 → "1 minute", 7200 → "2 hours", 90 → "90 seconds"."""
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour" if hours == 1 else f"{hours} hours"
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds} seconds"
