"""A real Pipecat pipeline (tests/agents/pipecat_pipeline.py: Pipecat's own OpenAI LLM and TTS
services against a local stand-in, tracing on, the OTLP/HTTP exporter) sending its spans to the
running stack: its turns are stored with Pipecat's own figures, read back through the API."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from errorsink.projects.api_keys import api_key_create
from errorsink.projects.models import ApiKey

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
CHECKOUT = Path(__file__).resolve().parent.parent


def test_a_real_pipecat_pipelines_turns_reach_the_timeline(project, live_server_url,
                                                           celery_worker):  # fmt: skip
    key = api_key_create(project=project, scopes=ApiKey.SCOPES)[1]
    agent = subprocess.run(
        [sys.executable, "-m", "tests.agents.pipecat_pipeline", live_server_url, key, "call-pc"],
        cwd=CHECKOUT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "ENVIRONMENT": "test"},
    )  # fmt: skip
    assert agent.returncode == 0, agent.stderr[-3000:]
    url = f"{live_server_url}/api/v1/projects/{project.id}/sessions/call-pc/turns"
    headers = {"Authorization": f"Bearer {key}"}
    deadline, turns = time.monotonic() + 30, []
    while time.monotonic() < deadline and len([t for t in turns if t["llm_ms"]]) < 2:
        answer = httpx.get(url, headers=headers)
        turns = answer.json()["turns"] if answer.status_code == 200 else []
        time.sleep(0.5)
    assert [turn["number"] for turn in turns] == [1, 2]
    first, second = turns
    # Pipecat measured them: the stand-in LLM waited 0.45 s, then 0.25 s, for its first token.
    assert 450 <= first["llm_ms"] < 1500 and 250 <= second["llm_ms"] < first["llm_ms"]
    assert all(100 <= turn["tts_ms"] < 1500 for turn in turns)
    assert all(turn["voice_to_voice_ms"] > turn["llm_ms"] for turn in turns)
    assert first["models"] == {"llm": "openai/gpt-4.1-mini", "tts": "openai/gpt-4o-mini-tts"}
    assert (first["input_tokens"], first["output_tokens"]) == (41, 4)
    assert first["framework"] == "pipecat" and not first["interrupted"]
