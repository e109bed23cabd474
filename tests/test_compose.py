"""compose.yaml cannot run here (no Docker engine), so its contract is checked by parsing it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from devstack.processes import entrypoints

pytestmark = pytest.mark.pure

CHECKOUT = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((CHECKOUT / "compose.yaml").read_text())


def makefile_entrypoints() -> dict[str, str]:
    output = subprocess.run(
        ["make", "--no-print-directory", "-s", "print-entrypoints", "PORT=8000"],
        cwd=CHECKOUT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return dict(line.split("=", 1) for line in output.splitlines())


def test_it_defines_every_service_of_the_stack():
    assert set(compose()["services"]) == {"postgres", "redis", "migrate", "web", "worker", "beat",
                                          "otlp"}  # fmt: skip


def test_it_runs_the_defined_command_line_in_each_app_service():
    services = compose()["services"]
    for name, command in entrypoints(port=8000).items():
        assert services[name]["command"] == command, name


def test_it_prints_the_same_command_lines_with_make():
    assert makefile_entrypoints() == entrypoints(port=8000)


def test_it_shares_one_environment_block_with_every_setting():
    services = compose()["services"]
    environments = [services[name]["environment"]
                    for name in ("migrate", "web", "worker", "beat", "otlp")]  # fmt: skip
    assert all(env == environments[0] for env in environments)
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "PORT",
            "ERRORSINK_QUEUE"} <= set(environments[0])  # fmt: skip
    assert environments[0]["DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:" in environments[0]["DATABASE_URL"]
    assert environments[0]["REDIS_URL"].startswith("redis://redis:")


def test_it_runs_two_of_each_process_that_scales_out_and_one_beat():
    services = compose()["services"]
    replicas = {name: services[name].get("deploy", {}).get("replicas", 1) for name in services}
    assert (replicas["web"], replicas["worker"], replicas["beat"]) == (2, 2, 1)
    # Each web replica needs a host port of its own.
    assert services["web"]["ports"] == ["8000-8001:8000"]
