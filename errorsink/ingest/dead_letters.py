"""A project's dead letters (docs/formats.md's `session-errors:dead`), grouped by reason, for its
owners to requeue or discard.

The list is one for every project, and stays the contract: an entry belongs to a project when
its item names that project. Reading is bounded: the newest SCAN_MAX entries, in chunks, an
entry parsed only when it holds the project's id at all. Entries whose item is not JSON or
names no project belong to no project's page; `manage.py ingest_status` still counts them.

Requeue and discard act on exact entries: each is removed with LREM, and requeued only if it
was removed, in one script, so two owners clicking at once never requeue an item twice, and
entries the worker appends meanwhile are never touched.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

import orjson
from django.core.cache import cache

from errorsink.connections import redis_client
from errorsink.ingest.batch import batch_rows
from errorsink.ingest.queue import dead_letter_name, queue_name
from errorsink.issues.grouping import message_masked

SCAN_MAX = 5000
CHUNK = 500
# Entries removed per script call: LREM walks the list, and Redis serves nobody else meanwhile;
# 50 keeps a call to milliseconds on a long list.
REMOVE_CHUNK = 50
SAMPLES = 3
SAMPLE_CHARS = 2000
COUNT_CACHE_SECONDS = 30

# Remove each entry once (ARGV[1..n]) and, if it was there, push its item (ARGV[n+1..2n]) back
# onto the queue when KEYS[2] is given; returns how many entries were removed.
_TAKE_OUT = """
local n = #ARGV / 2
local done = 0
for i = 1, n do
  -- From the tail: the entries a page shows are the newest.
  if redis.call('LREM', KEYS[1], -1, ARGV[i]) == 1 then
    done = done + 1
    if KEYS[2] then redis.call('LPUSH', KEYS[2], ARGV[n + i]) end
  end
end
return done
"""


@dataclass
class DeadLetter:
    entry: bytes  # exactly as stored, to remove exactly this one
    reason: str
    item: str
    at: str
    size: int | None = None  # the whole item's size when only its start was kept

    @property
    def truncated(self) -> bool:
        """Cut at ERRORSINK_DEAD_ITEM_MAX_BYTES: it can be read and discarded, not requeued
        (what is left is not the item)."""
        return self.size is not None

    @cached_property
    def refused_again(self) -> bool:
        """Whether today's worker would dead-letter the item again before it reaches the
        database (not JSON, a field of the wrong type...): requeueing it would only bring it
        back. An item the database refused, or one an upgrade now reads, is not."""
        return bool(batch_rows([self.item.encode()], received_at=datetime.now(UTC)).rejected)

    @property
    def requeueable(self) -> bool:
        return not self.truncated and not self.refused_again


@dataclass
class ReasonGroup:
    key: str  # stable for the reason with its variable parts masked
    reason: str  # the newest entry's own words
    letters: list[DeadLetter] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.letters)

    @property
    def samples(self) -> list[DeadLetter]:
        return self.letters[:SAMPLES]

    @property
    def last_at(self) -> str:
        return self.letters[0].at

    @property
    def last_moment(self) -> datetime | None:
        """When the newest entry was dead-lettered, for the page to show as every time is shown;
        None for an entry whose time is missing or not ISO 8601 (written by another program)."""
        try:
            return datetime.fromisoformat(self.last_at)
        except ValueError:
            return None

    @property
    def requeueable(self) -> int:
        return sum(letter.requeueable for letter in self.letters)


@dataclass
class ProjectDeadLetters:
    groups: list[ReasonGroup]
    scanned: int  # entries read, newest first
    total: int  # entries in the whole list, of every project

    @property
    def count(self) -> int:
        return sum(group.count for group in self.groups)

    @property
    def cut(self) -> bool:
        return self.total > self.scanned


def project_dead_letters(*, project_id: object) -> ProjectDeadLetters:
    """The project's dead letters among the newest SCAN_MAX, grouped by reason, newest first."""
    client = redis_client()
    name = dead_letter_name()
    # Positions from the head, counted from the length read first: the worker appends at the
    # tail, which moves no entry already there, so no entry is read twice or skipped.
    total = client.llen(name)
    marker = str(project_id).lower().encode()
    groups: dict[str, ReasonGroup] = {}
    scanned = 0
    for stop in range(total - 1, max(total - SCAN_MAX, 0) - 1, -CHUNK):
        start = max(stop - CHUNK + 1, total - SCAN_MAX, 0)
        chunk = client.lrange(name, start, stop)
        scanned += len(chunk)
        for entry in reversed(chunk):  # newest first
            letter = _of_project(entry, marker, project_id)
            if letter is not None:
                key = _reason_key(letter.reason)
                groups.setdefault(key, ReasonGroup(key, letter.reason)).letters.append(letter)
    ordered = sorted(groups.values(), key=lambda group: group.last_at, reverse=True)
    found = ProjectDeadLetters(groups=ordered, scanned=scanned, total=total)
    cache.set(f"dead-letters:{project_id}", found.count, COUNT_CACHE_SECONDS)
    return found


def project_dead_letter_count(*, project_id: object) -> int:
    """For the project page: the count, read at most once per COUNT_CACHE_SECONDS per process
    (a scan reads up to SCAN_MAX entries; a page load should not)."""
    key = f"dead-letters:{project_id}"
    count = cache.get(key)
    if count is None:
        count = project_dead_letters(project_id=project_id).count
        cache.set(key, count, COUNT_CACHE_SECONDS)
    return count


def _count_forget(project_id: object) -> None:
    cache.delete(f"dead-letters:{project_id}")


def _of_project(entry: bytes, marker: bytes, project_id: object) -> DeadLetter | None:
    if marker not in entry.lower():  # cheap: most entries are another project's
        return None
    try:
        letter = orjson.loads(entry)
        named = _project_named(letter)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if named != uuid.UUID(str(project_id)):
        return None
    size = letter.get("size") if letter.get("truncated") else None
    return DeadLetter(entry, str(letter.get("reason", "")), letter["item"],
                      str(letter.get("at", "")), size)  # fmt: skip


# A cut item is not JSON any more; its project is read from the text that is left.
_PROJECT_FIELD = re.compile(r'"project_id"\s*:\s*"([0-9a-fA-F-]{32,36})"')


def _project_named(letter: dict) -> uuid.UUID:
    if letter.get("truncated"):
        found = _PROJECT_FIELD.search(letter["item"])
        if found is None:
            raise ValueError("no project_id in the part kept")
        return uuid.UUID(found.group(1))
    return uuid.UUID(str(orjson.loads(letter["item"])["project_id"]))


def _reason_key(reason: str) -> str:
    return hashlib.blake2b(message_masked(reason).encode(), digest_size=8).hexdigest()


def dead_letters_requeue(*, project_id: object, group_key: str, seen_until: str) -> int:
    """Put the group's items back on the ingest queue, as they came; returns how many. Only
    entries dead-lettered up to ``seen_until`` (the newest the page showed) are touched."""
    return _take_out(project_id, group_key, seen_until, requeue=True)


def dead_letters_discard(*, project_id: object, group_key: str, seen_until: str) -> int:
    """Delete the group's entries up to ``seen_until``; returns how many."""
    return _take_out(project_id, group_key, seen_until, requeue=False)


def _take_out(project_id: object, group_key: str, seen_until: str, *, requeue: bool) -> int:
    found = project_dead_letters(project_id=project_id)
    group = next((group for group in found.groups if group.key == group_key), None)
    if group is None:
        return 0
    # ISO 8601 in UTC, all written alike: comparable as text. Nothing arrived after the page
    # was drawn is acted on, so Discard never deletes an item its owner did not see.
    letters = [letter for letter in group.letters if letter.at <= seen_until]
    if requeue:  # a cut item, or one the worker refuses, would only come back
        letters = [letter for letter in letters if letter.requeueable]
    keys = [dead_letter_name(), queue_name()] if requeue else [dead_letter_name()]
    done = 0
    for start in range(0, len(letters), REMOVE_CHUNK):
        chunk = letters[start : start + REMOVE_CHUNK]
        args = [letter.entry for letter in chunk] + [letter.item for letter in chunk]
        done += redis_client().eval(_TAKE_OUT, len(keys), *keys, *args)
    _count_forget(project_id)
    return done
