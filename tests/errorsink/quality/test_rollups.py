"""The quality rollups against a recount of the raw events: exact, idempotent, catching up, and
blind to no late-committing event."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import orjson
import psycopg
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, connections
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.items import mixed_items
from errorsink.ingest.queue import enqueue
from errorsink.ingest.reader import QueueReader
from errorsink.live import group_name
from errorsink.quality.figure_reads import project_quality
from errorsink.quality.models import (
    FigureCodes,
    FigureMetrics,
    FigureSessions,
    FigureStretch,
    FigureVersion,
    RollupState,
)
from errorsink.quality.rollups import ADVISORY_LOCK_KEY, rollups_apply, rollups_update
from errorsink.quality.selectors import WINDOWS
from errorsink.sessions.models import Event, Session
from errorsink.tasks import rollups_compute
from tests.errorsink.conftest import dead_letters, drain
from tests.errorsink.quality.recount import assert_same_figures, recount

pytestmark = pytest.mark.django_db(transaction=True)
_numbers = itertools.count(1)

WARNING_CODES = ["31001", "31002", "31003", "31004", "32001", "33004", "33008", "34001", "35001"]
ERROR_CODES = ["45002", "42001", "AGENT_CHILD_CRASHED"]
CAUSES = ["NORMAL_CLEARING", "USER_BUSY", "PURGE"]
METRIC_VALUE = st.one_of(
    st.floats(min_value=-10, max_value=700, allow_nan=False),
    st.integers(min_value=-5, max_value=200),
    st.sampled_from(["high", True, None, [1], 1e300]),
)


def _event(project, **fields) -> Event:
    number = next(_numbers)
    now = timezone.now()
    values = dict(
        project=project, event_id=f"r-{number}", session_id="s1", kind=Event.ERROR,
        code="45002", occurred_at=now, received_at=now, source="client", severity="high",
        item_type="sdk_event", raw={},
    )  # fmt: skip
    values.update(fields)
    return Event(**values)


@st.composite
def events_strategy(draw) -> list[dict]:
    """Fields of random events over the last six days, most of them within two hours."""
    count = draw(st.integers(min_value=1, max_value=60))
    rows = []
    for _ in range(count):
        kind = draw(st.sampled_from(["warning", "warning", "error", "termination", "info"]))
        minutes = draw(st.one_of(st.floats(0, 130), st.floats(0, 6 * 24 * 60), st.floats(-30, 0)))
        row = {"kind": kind, "minutes_ago": minutes,
               "session_id": draw(st.sampled_from(["s1", "s2", "s3", "s4", "s5", ""])),
               "build_id": draw(st.sampled_from(["", "b1", "b2"])), "details": {}}  # fmt: skip
        if kind == "warning":
            row["code"] = draw(st.sampled_from(WARNING_CODES))
            if draw(st.integers(0, 3)):
                keys = ["rtt_ms", "jitter_ms", "packet_loss_pct", "mos", "other"]
                row["details"] = {"metrics": draw(st.dictionaries(st.sampled_from(keys),
                                                                  METRIC_VALUE))}  # fmt: skip
        elif kind == "error":
            row["code"] = draw(st.sampled_from(ERROR_CODES))
        elif kind == "termination":
            row["code"] = draw(st.sampled_from(CAUSES))
            sip = draw(st.sampled_from([None, 486, 404, 200, 17, "486", 486.5, 486.0]))
            row["details"] = {"termination": {"cause": row["code"], "sip_code": sip}}
        else:
            row["code"] = "SESSION_IDLE_TIMEOUT"
        rows.append(row)
    return rows


def _store(project, rows: list[dict], now) -> None:
    """Store the rows as events, and their sessions as ingest keeps them: a session takes the
    last non-empty build its items bring, so a later batch may move it to another build."""
    Event.objects.bulk_create(
        _event(project, kind=row["kind"], code=row["code"], session_id=row["session_id"],
               build_id=row["build_id"], details=row["details"],
               occurred_at=now - timedelta(minutes=row["minutes_ago"]))
        for row in rows
    )  # fmt: skip
    for row in rows:
        if row["session_id"]:
            session, _ = Session.objects.get_or_create(
                project=project, session_id=row["session_id"],
                defaults={"first_seen": now, "last_seen": now},
            )  # fmt: skip
            if row["build_id"]:
                Session.objects.filter(id=session.id).update(build_id=row["build_id"])


def _clear() -> None:
    Event.objects.all().delete()
    Session.objects.all().delete()
    _reset_rollups()


def _reset_rollups() -> None:
    """As if the rollups had never run."""
    for model in (RollupState, FigureSessions, FigureCodes, FigureMetrics, FigureStretch,
                  FigureVersion):  # fmt: skip
        model.objects.all().delete()
    Session.objects.update(figures_build=None)


def _settle() -> None:
    """Two runs: the first takes a reading, the second passes its horizon."""
    rollups_update()
    rollups_update()


def _assert_matches_recount(project, now) -> None:
    for window in WINDOWS:
        for build_id in (None, "b1", ""):
            if build_id == "":
                continue  # not an allowed build filter; "" builds show in the builds list
            actual = project_quality(project_id=project.id, window=window, build_id=build_id,
                                     now=now)  # fmt: skip
            expected = recount(project_id=project.id, window=window, build_id=build_id, now=now)
            assert_same_figures(actual, expected)


@settings(max_examples=25, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(batches=st.lists(events_strategy(), min_size=1, max_size=3))
def test_it_matches_a_recount_whether_run_after_each_batch_or_once(project, batches):
    _clear()
    now = timezone.now()
    for rows in batches:
        _store(project, rows, now)
        _settle()
        for window in ("24h", "7d"):  # keeps their stretches before today: the next batch
            project_quality(project_id=project.id, window=window, now=now)  # must renew them
    _assert_matches_recount(project, now)

    figures = project_quality(project_id=project.id, window="7d", now=now)
    _settle()  # computing again changes nothing
    assert project_quality(project_id=project.id, window="7d", now=now) == figures

    _reset_rollups()  # as if the worker had been down for all of it
    _settle()
    _assert_matches_recount(project, now)


def test_an_event_committed_late_with_a_lower_id_is_counted(project, alice):
    for insert_early in (True, False):
        _late_commit_case(project, insert_early=insert_early)


def _late_commit_case(project, *, insert_early: bool) -> None:
    _clear()
    now = timezone.now()
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"],
        dbname=db["NAME"],
    ) as other:  # fmt: skip
        late_id = other.execute("SELECT nextval('errorsink_event_id_seq')").fetchone()[0]
        late = _event(project, id=late_id, code="31002", kind=Event.WARNING, occurred_at=now)

        def insert_late() -> None:
            other.execute(
                "INSERT INTO errorsink_event (id, project_id, event_id, session_id, kind, code, "
                "name, message, occurred_at, received_at, source, severity, build_id, stack, "
                "details, item_type, raw) VALUES (%s, %s, %s, 's9', 'warning', '31002', '', '', "
                "%s, %s, 'client', 'medium', '', '', '{}', 'sdk_event', '{}')",
                [late.id, project.id, late.event_id, now, now],
            )

        if insert_early:
            insert_late()  # the batch holds an xid already
        _store(project, [{"kind": "error", "code": "45002", "session_id": "s1", "build_id": "",
                          "details": {}, "minutes_ago": 1}], now)  # fmt: skip
        _settle()
        assert RollupState.objects.get().watermark < late_id
        if not insert_early:
            insert_late()  # drawn before the runs, written after them
        other.commit()
    _settle()
    assert RollupState.objects.get().watermark > late_id
    figures = project_quality(project_id=project.id, window="1h", now=now)
    assert figures["sessions"]["active"] == 2 and figures["sessions"]["degraded"] == 1
    _assert_matches_recount(project, now)


def test_a_run_is_a_fixed_number_of_queries(project, django_assert_num_queries):
    now = timezone.now()
    _store(project, [{"kind": "warning", "code": "31002", "session_id": f"s{n}", "build_id": "b1",
                      "details": {"metrics": {"jitter_ms": n}}, "minutes_ago": n}
                     for n in range(300)], now)  # fmt: skip
    # lock, state, reading (2), pending; per chunk its end, BEGIN, lock state, chunk, its
    # statistics, moves, projects, for each of the 3 figure tables its groups, stored rows and
    # write, versions, sessions, drop, watermark, COMMIT; pending, prune, unlock: the same for 300
    # events or 50,000 (no other transaction is open to wait for).
    with django_assert_num_queries(29):
        result = rollups_update()
    assert result.chunks == 1
    assert project_quality(project_id=project.id, window="24h", now=now)["warnings"][0][
        "count"
    ] == sum(1 for n in range(300) if n < 60 * 24)


def test_it_processes_a_backlog_in_chunks(project, monkeypatch):
    monkeypatch.setattr("errorsink.quality.rollups.CHUNK_IDS", 7)
    now = timezone.now()
    rows = [{"kind": "error", "code": "45002", "session_id": f"s{n % 5}", "build_id": "",
             "details": {}, "minutes_ago": n} for n in range(50)]  # fmt: skip
    monkeypatch.setattr("errorsink.quality.rollups.MAX_CHUNKS_PER_RUN", 3)
    _store(project, rows, now)
    runs = [rollups_update().chunks]
    while runs[-1]:  # a run does at most MAX_CHUNKS_PER_RUN; the next ones go on
        runs.append(rollups_update().chunks)
    assert runs == [3, 3, 2, 0]  # 7 events a chunk
    _assert_matches_recount(project, now)


def test_a_second_run_at_once_does_nothing(project):
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"],
        dbname=db["NAME"], autocommit=True,
    ) as other:  # fmt: skip
        other.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        assert not rollups_update().ran
        other.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
    assert rollups_update().ran


def test_applying_a_range_twice_counts_it_once(project):
    now = timezone.now()
    _store(project, [{"kind": "error", "code": "45002", "session_id": "s1", "build_id": "",
                      "details": {}, "minutes_ago": 3}], now)  # fmt: skip
    RollupState.objects.get_or_create(id=1)
    through = Event.objects.latest("id").id
    assert rollups_apply(after=0, through=through) == {project.id}
    assert rollups_apply(after=0, through=through) is None
    assert project_quality(project_id=project.id, window="1h", now=now)["errors"][0]["count"] == 1


@pytest.mark.parametrize("count, p95", [(1, 1.0), (20, 19.0), (21, 20.0), (30, 29.0), (100, 95.0)])
def test_p95_is_the_nearest_rank_value(project, count, p95):
    now = timezone.now()
    rows = [{"kind": "warning", "code": "31002", "session_id": "s1", "build_id": "",
             "details": {"metrics": {"jitter_ms": value}}, "minutes_ago": 5}
            for value in range(count, 0, -1)]  # fmt: skip
    _store(project, rows, now)
    _settle()
    for window in WINDOWS:
        warning = project_quality(project_id=project.id, window=window, now=now)["warnings"][0]
        got = warning["metrics"]["jitter_ms"]["p95"]
        # Within the DDSketch's 1 %, and never outside the values: one value is itself.
        assert got == pytest.approx(p95, rel=0.01) and 1 <= got <= count
        assert got == p95 or count > 1


def test_bad_metrics_are_left_out_and_never_fail_a_run(project):
    now = timezone.now()
    bad = [{"packet_loss_pct": -3, "mos": 7, "rtt_ms": "high", "jitter_ms": True},
           {"mos": 1e300, "rtt_ms": [1]}, {"mos": 4.5, "packet_loss_pct": 2}]  # fmt: skip
    rows = [{"kind": "warning", "code": "31004", "session_id": "s1", "build_id": "",
             "details": {"metrics": metrics}, "minutes_ago": 2} for metrics in bad]  # fmt: skip
    rows += [{"kind": "warning", "code": "31004", "session_id": "s2", "build_id": "",
              "details": details, "minutes_ago": 2}
             for details in ({"metrics": [1, 2]}, {"metrics": "x"}, [1], "text")]  # fmt: skip
    _store(project, rows, now)
    _settle()
    warning = project_quality(project_id=project.id, window="1h", now=now)["warnings"][0]
    assert warning["count"] == 7
    assert warning["metrics"] == {
        "mos": {"count": 1, "avg": 4.5, "p95": 4.5},
        "packet_loss_pct": {"count": 1, "avg": 2.0, "p95": 2.0},
    }


def test_a_warning_with_bad_metrics_is_stored_with_the_reason_and_left_out_of_averages(
    project, reader
):
    """Through the real queue and worker: the batch is stored whole, nothing dead-lettered."""
    now = timezone.now()
    warning = {"type": "session_warning", "project_id": str(project.id), "code": "LOW_MOS",
               "occurred_at": (now - timedelta(minutes=2)).isoformat()}  # fmt: skip
    items = [
        {**warning, "session_id": "bad", "metrics": {"mos": 7.2, "packet_loss_pct": "high",
                                                     "rtt_ms": 120}},
        {**warning, "session_id": "odd", "metrics": "x"},
        {**warning, "session_id": "good", "metrics": {"mos": 4.0, "packet_loss_pct": 2}},
    ]  # fmt: skip
    enqueue([orjson.dumps(item) for item in items])
    assert drain(reader) == 3
    assert dead_letters(reader) == []
    stored = {event.session_id: event for event in Event.objects.all()}
    assert stored["bad"].details == {
        "metrics": {"rtt_ms": 120},
        "metric_problems": {"mos": "7.2 is above 5",
                            "packet_loss_pct": 'must be a number, got string "high"'},
    }  # fmt: skip
    assert stored["bad"].raw["metrics"] == items[0]["metrics"]
    assert stored["odd"].details == {
        "metric_problems": {"metrics": 'must be an object, got string "x"'}
    }
    _settle()
    [row] = project_quality(project_id=project.id, window="1h", now=now)["warnings"]
    assert (row["code"], row["count"], row["sessions"]) == ("31004", 3, 3)
    assert row["metrics"] == {
        "mos": {"count": 1, "avg": 4.0, "p95": 4.0},
        "packet_loss_pct": {"count": 1, "avg": 2.0, "p95": 2.0},
        "rtt_ms": {"count": 1, "avg": 120.0, "p95": 120.0},
    }


def test_sessions_get_quality_tags_from_their_codes(project):
    now = timezone.now()
    for session_id in ("s1", "s2"):
        Session.objects.create(project=project, session_id=session_id, first_seen=now,
                               last_seen=now)  # fmt: skip
    rows = [{"kind": kind, "code": code, "session_id": "s1", "build_id": "", "details": {},
             "minutes_ago": 1}
            for kind, code in (("warning", "31002"), ("warning", "33004"), ("warning", "34001"),
                               ("error", "45003"), ("warning", "31002"))]  # fmt: skip
    _store(project, rows, now)
    _settle()
    _store(project, [{**rows[0], "code": "31001"}], now)
    _settle()
    tags = dict(Session.objects.values_list("session_id", "quality_tags"))
    assert tags == {
        "s1": ["high_jitter", "high_latency", "ice_failure", "signaling_failure"],
        "s2": [],
    }


def test_sdk_227_warnings_follow_the_degraded_ranges_and_give_their_tags(project):
    now = timezone.now()
    codes = {"s1": "31005", "s2": "33010", "s3": "36004", "s4": "47001", "s5": "32004",
             "s6": "32001"}  # fmt: skip
    for session_id in codes:
        Session.objects.create(project=project, session_id=session_id, first_seen=now,
                               last_seen=now)  # fmt: skip
    _store(project, [{"kind": "error" if code == "47001" else "warning", "code": code,
                      "session_id": session_id, "build_id": "", "details": {}, "minutes_ago": 1}
                     for session_id, code in codes.items()], now)  # fmt: skip
    _settle()
    sessions = project_quality(project_id=project.id, window="1h", now=now)["sessions"]
    # Low audio and a data-flow stall; not a second call, a recording buffer or a 360xx notice.
    assert (sessions["active"], sessions["degraded"]) == (6, 2)
    tags = dict(Session.objects.values_list("session_id", "quality_tags"))
    assert tags == {"s1": ["low_audio"], "s2": [], "s3": ["connectivity_lost"],
                    "s4": ["ice_failure"], "s5": [], "s6": ["no_audio"]}  # fmt: skip


def test_beat_runs_the_thin_task_every_few_seconds(project, settings):
    from errorsink.tasks import rollups_compute

    entry = settings.CELERY_BEAT_SCHEDULE["rollups-compute"]
    assert entry["task"] == rollups_compute.name and entry["schedule"].seconds <= 10
    now = timezone.now()
    _store(project, [{"kind": "error", "code": "45002", "session_id": "s1", "build_id": "",
                      "details": {}, "minutes_ago": 1}], now)  # fmt: skip
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group_name(project.id), channel)
    assert rollups_compute() == Event.objects.latest("id").id
    # The project's open dashboards hear that its figures moved.
    assert async_to_sync(layer.receive)(channel) == {"type": "quality.updated"}
    async_to_sync(layer.group_discard)(group_name(project.id), channel)
    assert rollups_compute() is None  # nothing new: no figures moved


def test_it_says_when_an_open_transaction_holds_the_figures_back(project, caplog):
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"],
        dbname=db["NAME"],
    ) as other:  # fmt: skip
        other.execute("SELECT nextval('errorsink_event_id_seq')")  # open, then left idle
        rollups_update()  # the reading remembers the open transaction
        RollupState.objects.update(updated_at=timezone.now() - timedelta(seconds=45))
        with caplog.at_level("WARNING", logger="errorsink.quality.rollups"):
            rollups_update()
        assert "held back" in caplog.text
        other.rollback()
    caplog.clear()
    with caplog.at_level("WARNING", logger="errorsink.quality.rollups"):
        rollups_update()
    assert "held back" not in caplog.text


def _over_the_last_hour(items: list[bytes], now) -> list[bytes]:
    """The items re-dated to spread evenly over the hour before ``now``."""
    spread = []
    for n, raw in enumerate(items):
        item = orjson.loads(raw)
        moment = now - timedelta(minutes=60 * (len(items) - n) / len(items))
        item["occurred_at"] = moment.isoformat()
        spread.append(orjson.dumps(item))
    return spread


def _wait_for(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _rolled_up_by_the_worker(stored: int) -> None:
    """Wait for the worker to store ``stored`` events, then run the rollups through it, as
    beat would, until they cover them all."""
    _wait_for(lambda: Event.objects.count() == stored, f"{stored} stored events")
    last = Event.objects.latest("id").id

    def covered() -> bool:
        if RollupState.objects.filter(watermark__gte=last).exists():
            return True
        rollups_compute.delay()
        return False

    _wait_for(covered, "the rollups to cover every stored event")


def test_after_the_worker_was_down_for_an_hour_of_events_the_figures_equal_one_run(
    clean_queue, project, private_stack
):
    now = timezone.now()
    items = _over_the_last_hour(mixed_items(2000, str(project.id), sessions=200), now)
    worker = private_stack.worker()
    try:
        enqueue(items[:500])
        _rolled_up_by_the_worker(500)
        private_stack.stop(worker)  # down while the rest of the hour's events are pushed
        enqueue(items[500:])  # no worker runs: nothing can store them yet
        assert Event.objects.count() == 500
        worker = private_stack.worker()
        _rolled_up_by_the_worker(len(items))
    finally:
        private_stack.stop(worker)
    caught_up = {window: project_quality(project_id=project.id, window=window, now=now)
                 for window in WINDOWS}  # fmt: skip
    assert caught_up["1h"]["sessions"]["active"] == 200
    _assert_matches_recount(project, now)
    _reset_rollups()
    rollups_update()  # one run over everything
    for window in WINDOWS:
        # Averages to the last bits: moving a session's values out of a build subtracts floats.
        one_run = project_quality(project_id=project.id, window=window, now=now)
        assert one_run["accuracy"] == caught_up[window].pop("accuracy")
        assert_same_figures(one_run, caught_up[window])


def _session_items(project, n: int, now) -> dict[str, list[bytes]]:
    """One session's items as a runner and a browser push them: only the error knows the
    build. Sessions 0 and 1 have a degrading warning (31002); every session a 36004 notice,
    which degrades nothing."""
    base = {"project_id": str(project.id), "session_id": f"call-{n}"}
    at = (now - timedelta(minutes=10, seconds=n)).isoformat()
    warnings = [{**base, "type": "session_warning", "code": 36004, "occurred_at": at}]
    if n < 2:
        warnings.append({**base, "type": "session_warning", "code": 31002, "occurred_at": at,
                         "metrics": {"jitter_ms": 40 + n}})  # fmt: skip
    error = {**base, "type": "session_error", "code": "AGENT_HANDLER_FAILED", "message": "boom",
             "build_id": "good-1", "occurred_at": at}  # fmt: skip
    end = {**base, "type": "session_end", "cause": "NORMAL_CLEARING", "occurred_at": at}
    return {"warnings": [orjson.dumps(item) for item in warnings],
            "error": [orjson.dumps(error)], "end": [orjson.dumps(end)]}  # fmt: skip


def _drain_concurrently(readers: int) -> None:
    """Readers in threads take batches off the same queue at once, as the worker's do, while
    the rollups run beside them."""

    def work() -> None:
        try:
            drain(QueueReader(batch_size=3))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(readers) as pool:
        futures = [pool.submit(work) for _ in range(readers)]
        while not all(future.done() for future in futures):
            rollups_update()
        for future in futures:
            future.result()


def test_every_event_of_a_session_counts_under_its_build_whatever_the_order(clean_queue, project):
    now = timezone.now()
    sessions = [_session_items(project, n, now) for n in range(40)]
    # Half the sessions' warnings and ends are stored and counted before their error arrives.
    enqueue([item for s in sessions[:20] for item in s["warnings"] + s["end"]])
    _drain_concurrently(2)
    _settle()
    # The rest arrive in every order, split across batches taken at once.
    rest = [item for s in sessions[:20] for item in s["error"]]
    for n, s in enumerate(sessions[20:]):
        rest += (
            s["warnings"] + s["end"] + s["error"]
            if n % 2
            else s["error"] + s["end"] + s["warnings"]
        )
    enqueue(rest)
    _drain_concurrently(2)
    _settle()

    figures = project_quality(project_id=project.id, window="24h", now=now)
    builds = {row["build_id"]: (row["sessions"], row["degraded"]) for row in figures["builds"]}
    assert builds == {"good-1": (40, 2)}
    assert project_quality(project_id=project.id, window="24h", build_id="good-1",
                           now=now)["sessions"]["active"] == 40  # fmt: skip
    _assert_matches_recount(project, now)
