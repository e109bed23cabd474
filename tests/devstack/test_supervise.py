"""The stack runner keeps the stack up (issue 14): a process that dies is restarted with
doubling back-off while the others keep running; real subprocesses, nothing of Django."""

from __future__ import annotations

import sys
import time

import pytest

from devstack import stack

pytestmark = pytest.mark.pure


def _child(label: str, code: str) -> stack._Child:
    return stack._Child(label, [sys.executable, "-c", code], env={})


def _tick_for(children: list[stack._Child], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for child in children:
            child.check()
        time.sleep(0.05)


def test_a_dead_process_is_restarted_with_back_off_and_the_others_keep_running(monkeypatch,
                                                                              capsys):  # fmt: skip
    monkeypatch.setattr(stack, "RESTART_FIRST_DELAY", 0.2)
    monkeypatch.setattr(stack, "_spawn", _spawn_quietly)
    crashing = _child("worker", "import os; os._exit(9)")
    steady = _child("web", "import time; time.sleep(30)")
    steady_pid = steady.proc.pid
    crashing_pids = {crashing.proc.pid}
    try:
        _tick_for([crashing, steady], 1.6)  # deaths at about 0, 0.2, 0.6 and 1.4 s
        crashing_pids.add(crashing.proc.pid)
        assert steady.proc.pid == steady_pid and steady.proc.poll() is None
        assert len(crashing_pids) >= 2
        log = capsys.readouterr().err
        delays = [line.split("restarting in ")[1].split(" s")[0] for line in log.splitlines()
                  if line.startswith("worker exited with code 9")]  # fmt: skip
        assert delays[:3] == ["0.2", "0.4", "0.8"]  # it doubles
    finally:
        for child in (crashing, steady):
            if child.proc.poll() is None:
                child.proc.kill()
            child.proc.wait()


def _spawn_quietly(command, env):
    import subprocess

    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.pure
def test_make_run_listens_on_this_machine_only_unless_told_otherwise(monkeypatch):
    from devstack.stack import stack_commands

    monkeypatch.delenv("ERRORSINK_BIND", raising=False)
    web = stack_commands(port=8000)["web"]
    assert web[web.index("--bind") + 1] == "127.0.0.1"
    monkeypatch.setenv("ERRORSINK_BIND", "0.0.0.0")
    web = stack_commands(port=8000)["web"]
    assert web[web.index("--bind") + 1] == "0.0.0.0"
