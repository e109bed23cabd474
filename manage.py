#!/usr/bin/env python
"""Django's command-line utility for errorsink; uses the embedded services where
DATABASE_URL / REDIS_URL are unset (devstack/services.py)."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from devstack import services

    services.activate()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
