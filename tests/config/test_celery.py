"""Beat starts where the state folder does not exist yet, as in a fresh container."""

from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_it_starts_beat_and_creates_the_state_folder_it_needs(private_stack, tmp_path):
    state = tmp_path / "fresh" / "state"
    # Its first due task is sent once the schedule is open: "beat: Starting..." comes before.
    beat = private_stack.beat(ready="Sending due task", ERRORSINK_STATE_DIR=str(state))
    try:
        assert list(state.glob("celerybeat-schedule*")), private_stack.log_text(beat)
    finally:
        private_stack.stop(beat)
    assert "Traceback" not in private_stack.log_text(beat), private_stack.log_text(beat)
