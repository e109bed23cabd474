"""A real Pipecat pipeline with tracing on, run as its own process by tests/test_pipecat_live.py:
Pipecat's OpenAI LLM and TTS services pointed at a local stand-in of OpenAI's API (streamed
chat completions with usage, streamed speech), and a stand-in for the output transport that
says when the bot starts and stops speaking. Its spans go to errorsink through the OTLP/HTTP
exporter, as the README's snippet sets it up.

Usage: python -m tests.agents.pipecat_pipeline <errorsink url> <api key> <conversation id>
"""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    LLMContextFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.openai.tts import OpenAITTSService
from pipecat.utils.tracing.setup import setup_tracing

FIRST_TOKEN_SECONDS = (0.45, 0.25)  # the stand-in LLM's wait, per turn
TURNS = len(FIRST_TOKEN_SECONDS)


async def _chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    turn = request.app["turns"]
    request.app["turns"] = turn + 1
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await asyncio.sleep(FIRST_TOKEN_SECONDS[turn % TURNS])
    for word in ("We ", "open ", "at ", "nine."):
        await _event(response, body, {"content": word}, None)
    await _event(response, body, {}, "stop", usage={"prompt_tokens": 41, "completion_tokens": 4,
                                                    "total_tokens": 45})  # fmt: skip
    await response.write(b"data: [DONE]\n\n")
    return response


async def _event(response, body: dict, delta: dict, finish: str | None, **extra) -> None:
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
             "model": body["model"], **extra,
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    await response.write(f"data: {json.dumps(chunk)}\n\n".encode())


async def _speech(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
    await response.prepare(request)
    await asyncio.sleep(0.1)
    await response.write(b"\x00\x01" * 2400)
    return response


class Speaker(FrameProcessor):
    """The output transport's part: the bot starts speaking with its first audio, stops when
    the TTS stops."""

    def __init__(self) -> None:
        super().__init__()
        self.speaking = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame) and not self.speaking:
            self.speaking = True
            await self._both_ways(BotStartedSpeakingFrame)
        elif isinstance(frame, TTSStoppedFrame) and self.speaking:
            self.speaking = False
            await self._both_ways(BotStoppedSpeakingFrame)

    async def _both_ways(self, kind) -> None:
        await self.push_frame(kind())
        await self.push_frame(kind(), FrameDirection.UPSTREAM)


async def _conversation(base: str, conversation_id: str) -> None:
    llm = OpenAILLMService(api_key="stand-in", base_url=base,
                           settings=OpenAILLMService.Settings(model="gpt-4.1-mini"))  # fmt: skip
    tts = OpenAITTSService(api_key="stand-in", base_url=base,
                           settings=OpenAITTSService.Settings(voice="alloy"))  # fmt: skip
    worker = PipelineWorker(
        Pipeline([llm, tts, Speaker()]),
        params=PipelineParams(enable_metrics=True),
        enable_tracing=True,
        conversation_id=conversation_id,
        cancel_on_idle_timeout=False,
    )
    context = LLMContext(messages=[{"role": "user", "content": "When do you open?"}])

    async def caller() -> None:
        await asyncio.sleep(0.5)
        for _ in range(TURNS):
            await worker.queue_frame(UserStartedSpeakingFrame())
            await asyncio.sleep(0.2)
            await worker.queue_frame(VADUserStoppedSpeakingFrame(stop_secs=0.2))
            await worker.queue_frame(UserStoppedSpeakingFrame())
            await worker.queue_frame(LLMContextFrame(context))
            await asyncio.sleep(3.0)  # the bot answers; the turn ends 2.5 s after it stops
        await worker.queue_frame(EndFrame())

    await asyncio.gather(PipelineRunner(handle_sigint=False).run(worker), caller())


async def main(url: str, key: str, conversation_id: str) -> None:
    setup_tracing(service_name="pipecat-test", exporter=OTLPSpanExporter(
        endpoint=f"{url}/v1/traces", headers={"Authorization": f"Bearer {key}"}))  # fmt: skip
    app = web.Application()
    app["turns"] = 0
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_post("/v1/audio/speech", _speech)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        await _conversation(f"http://127.0.0.1:{port}/v1", conversation_id)
    finally:
        await runner.cleanup()
    trace.get_tracer_provider().force_flush()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
