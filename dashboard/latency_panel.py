"""The project page's latency panel (docs/turns.md, "Latency figures"): voice-to-voice and
each stage for the quality panel's window, per build with the slower ones marked, and the
slowest turns linked to their sessions. Redrawn with the quality panel when the rollups move."""

from __future__ import annotations

from dataclasses import dataclass

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from dashboard.quality_panel import WINDOW_LABELS, PanelWindow
from errorsink.turns.figures import project_latency

TEMPLATE = "dashboard/partials/latency_panel.html"
BUILDS_SHOWN = 8
STAGES = (("end_of_turn_ms", "End of turn"), ("stt_ms", "Speech to text"),
          ("llm_ms", "LLM first token"), ("tts_ms", "TTS first byte"))  # fmt: skip


@dataclass(frozen=True)
class StageRow:
    label: str
    p50: float | None
    p95: float | None
    count: int
    width: float  # the p95's bar, in percent of the longest p95 shown (voice-to-voice's)


def latency_panel_html(*, project_id: object, window: PanelWindow, oob: bool) -> SafeString:
    figures = project_latency(project_id=project_id, window=window.name, since=window.since,
                              until=window.until)  # fmt: skip
    builds = figures["builds"]
    p95_of = {build["build_id"]: build["voice_to_voice"]["p95"] for build in builds}
    for build in builds:  # what a slower build is compared with, in the note under its row
        build["slower_than_p95"] = p95_of.get(build["slower_than"])
    context = {
        "figures": figures, "oob": oob, "phrase": _phrase(figures["window"]),
        "stages": _stage_rows(figures), "builds": builds[:BUILDS_SHOWN],
        "builds_hidden": max(0, len(builds) - BUILDS_SHOWN),
        "stage_names": [name for name, _ in STAGES],
        "slowest": [{**turn, "url": reverse("session-timeline", args=[
            project_id, turn["session_id"]]) + f"#tl-event-{turn['pk']}"}
            for turn in figures["slowest"]],
    }  # fmt: skip
    return mark_safe(render_to_string(TEMPLATE, context).strip())  # escaped by the template


def _phrase(window: dict) -> str:
    if window["name"] in WINDOW_LABELS:
        return f"the last {WINDOW_LABELS[window['name']]}"
    return f"{window['start']:%b %-d %H:%M} to {window['end']:%b %-d %H:%M} UTC"


def _stage_rows(figures: dict) -> list[StageRow]:
    voice = figures["voice_to_voice"]
    scale = max([voice["p95"] or 0] + [figures["stages"][name]["p95"] or 0
                                       for name, _ in STAGES]) or 1  # fmt: skip
    rows = [StageRow("Voice-to-voice", voice["p50"], voice["p95"], voice["count"],
                     _width(voice["p95"], scale))]  # fmt: skip
    for name, label in STAGES:
        stage = figures["stages"][name]
        if stage["count"]:
            rows.append(StageRow(label, stage["p50"], stage["p95"], stage["count"],
                                 _width(stage["p95"], scale)))  # fmt: skip
    return rows


def _width(value: float | None, scale: float) -> float:
    return round(max((value or 0) / scale * 100, 0.5), 2)
