"""Feed the event-count alert rules from the ingest batch, in its transaction: the stored errors
matching each rule of their project, added to the rule's counter for their second of arrival.
One read of the rules and at most one upsert a batch; nothing at all for a batch without errors.
(New and reopened issues are signalled by the issue upsert itself, errorsink/ingest/issues.py.)
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from errorsink.ingest.rows import EventRow

_RULES = """
SELECT id, project_id::text, condition->>'code', replace(issue_fingerprint::text, '-', '')
FROM errorsink_alert_rule WHERE kind = 'event_count' AND project_id = ANY(%s::uuid[])
"""

_COUNTS_ADD = """
INSERT INTO errorsink_alert_count AS c (rule_id, second, count)
SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::int[]) ORDER BY 1, 2
ON CONFLICT (rule_id, second) DO UPDATE SET count = c.count + EXCLUDED.count
"""


def alert_counts_add(cursor, rows: list[EventRow]) -> None:
    """Count the stored error rows into the event-count rules they match."""
    errors = [row for row in rows if row.kind == "error"]
    if not errors:
        return
    cursor.execute(_RULES, [sorted({row.project_id for row in errors})])
    rules = cursor.fetchall()
    if not rules:
        return
    counts: Counter[tuple[int, int]] = Counter()
    for rule_id, project_id, code, fingerprint in rules:
        for row in errors:
            if (row.project_id == project_id and (code is None or row.code == code)
                    and (fingerprint is None or row.fingerprint == fingerprint)):  # fmt: skip
                counts[rule_id, int(row.received_at.timestamp())] += 1
    if counts:
        keys = sorted(counts)  # sorted: two workers lock the same counters in the same order
        cursor.execute(_COUNTS_ADD, [[k[0] for k in keys], [k[1] for k in keys],
                                     [counts[k] for k in keys]])  # fmt: skip
