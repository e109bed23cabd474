import asyncio

from django.core.management.base import BaseCommand

from errorsink.turns.grpc_server import otlp_grpc_serve


class Command(BaseCommand):
    help = "Serve OTLP/gRPC traces (docs/turns.md): turn spans go onto the ingest queue."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--bind", default="0.0.0.0", help="the address to listen on")
        parser.add_argument("--port", type=int, default=4317, help="OTLP/gRPC's own port")

    def handle(self, *args, bind: str, port: int, **options) -> None:
        asyncio.run(otlp_grpc_serve(bind=bind, port=port))
