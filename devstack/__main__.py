"""`python -m devstack run|entrypoints|clean`: what the Makefile calls."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start the whole stack in the foreground")
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    entry = commands.add_parser("entrypoints", help="print the command line of each process")
    entry.add_argument("--port", type=int, default=8000)
    commands.add_parser("clean", help="stop the embedded services and delete their data")
    boot = commands.add_parser("bootstrap", help="migrate and create the first admin (run does)")
    boot.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    return HANDLERS[args.command](args)


def _run(args: argparse.Namespace) -> int:
    from devstack import services, stack

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Servers devstack starts are its to restart; one the user points at by URL is not.
    embedded = not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))
    services.activate()
    return stack.run(port=args.port, embedded=embedded)


def _entrypoints(args: argparse.Namespace) -> int:
    from devstack.processes import entrypoints

    for name, line in entrypoints(port=args.port).items():
        print(f"{name}={line}")
    return 0


def _clean(args: argparse.Namespace) -> int:
    from devstack import services

    services.wipe_state()
    return 0


def _bootstrap(args: argparse.Namespace) -> int:
    from devstack import services, stack

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    services.activate()
    stack.bootstrap(args.port)
    return 0


HANDLERS = {"run": _run, "entrypoints": _entrypoints, "clean": _clean, "bootstrap": _bootstrap}

if __name__ == "__main__":
    sys.exit(main())
