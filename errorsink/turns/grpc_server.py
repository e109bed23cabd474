"""OTLP/gRPC: the trace service on port 4317 (docs/turns.md), as Pipecat's own example exports.

An asyncio gRPC server in a process of its own, beside Daphne: it answers like the OTLP/HTTP
route (errorsink/door/otlp.py, the same ``export_queue``): the key from the ``authorization``
metadata, no database, one Redis call per export. Refusals map onto gRPC status codes; a full
quota or a Redis outage is UNAVAILABLE, which OTLP exporters retry with back-off.
"""

from __future__ import annotations

import logging

import grpc
import redis
from django.db import InterfaceError, OperationalError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from errorsink.door.body import MAX_INFLATED_BYTES
from errorsink.door.otlp import bearer, export_queue
from errorsink.turns.otlp import OtlpRefused, spans_of

log = logging.getLogger("errorsink.otlp")
_OUTAGES = (OperationalError, InterfaceError, redis.ConnectionError, redis.TimeoutError)
_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED, 404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.UNAVAILABLE, 503: grpc.StatusCode.UNAVAILABLE,
}  # fmt: skip


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    async def Export(  # noqa: N802 - the service's own method name
        self, request: ExportTraceServiceRequest, context: grpc.aio.ServicerContext
    ) -> ExportTraceServiceResponse:
        try:
            token = bearer(dict(context.invocation_metadata()).get("authorization", ""))
            rejected, message = await export_queue(token, None, spans_of(request))
        except OtlpRefused as exc:
            await context.abort(_CODES.get(exc.status, grpc.StatusCode.INTERNAL), exc.message)
        except _OUTAGES as exc:
            log.warning("dependency unavailable: %s: %s", type(exc).__name__, exc)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "a dependency is unavailable; retry")
        response = ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = message
        log.info("export: %d span(s) not used", rejected)
        return response


async def otlp_grpc_serve(*, bind: str, port: int) -> None:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_INFLATED_BYTES)])
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(), server)
    if server.add_insecure_port(f"{bind}:{port}") == 0:
        raise OSError(f"cannot listen on {bind}:{port}")
    await server.start()
    log.info("OTLP/gRPC listening on %s:%d", bind, port)
    await server.wait_for_termination()
