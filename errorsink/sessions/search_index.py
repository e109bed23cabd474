"""The message search index's pending entries, merged off the ingest path.

PostgreSQL's GIN index (``event_message_search``) takes new entries into a pending list and
merges them into the index in bulk, which is what keeps it cheap to write. The merge, though,
falls to whichever insert finds the list past its limit (4 MB, about 40,000 errors): one batch
of the queue reader then waited about 300 ms, every 20 s at 2,000 events a second, and the live
pages' p99 with it. Writing the index entry by entry instead (``fastupdate = off``) costs each
insert about twice as much. So the worker merges the list every two seconds itself, while it is
small; ingest never meets a full one below tens of thousands of errors a second. The event
table is partitioned by day (errorsink/sessions/partitions.py), so the index is one per
partition: each partition's is merged (an empty list costs a read of its first page).
"""

from __future__ import annotations

from django.db import connection

SEARCH_INDEX = "event_message_search"


def search_index_tidy() -> int:
    """Merge the search index's pending entries; returns how many pending pages it merged."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(gin_clean_pending_list(i.inhrelid::regclass)), 0)::bigint "
            "FROM pg_inherits i WHERE i.inhparent = %s::regclass",
            [SEARCH_INDEX],
        )
        return cursor.fetchone()[0]
