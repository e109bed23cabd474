"""Beat starts where the state folder does not exist yet, as in a fresh container."""

from __future__ import annotations

import pytest

from devstack.processes import beat_command, start, stop


@pytest.mark.django_db
def test_it_starts_beat_and_creates_the_state_folder_it_needs(service_env, tmp_path):
    state = tmp_path / "fresh" / "state"
    env = {**service_env, "ERRORSINK_STATE_DIR": str(state)}
    log = tmp_path / "beat.log"
    beat = start(beat_command(), env, log, ready="beat: Starting...")
    try:
        assert list(state.glob("celerybeat-schedule*")), log.read_text()
    finally:
        stop(beat)
    assert "Traceback" not in log.read_text(), log.read_text()
