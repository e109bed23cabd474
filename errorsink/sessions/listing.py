"""A project's sessions, most recently started first, filtered and paged by keyset
(docs/issues.md): served by the indexes ``session_started`` and ``session_id_prefix``, which
ingest's in-place (HOT) session updates leave alone."""

from __future__ import annotations

from errorsink.paging import Page, page_of
from errorsink.search import SessionSearch, keyset_before
from errorsink.sessions.models import Session

NO_END = "none"


def sessions_page(*, project_id: object, search: SessionSearch) -> Page[Session]:
    sessions = Session.objects.filter(project_id=project_id)
    if search.q:
        sessions = sessions.filter(session_id__startswith=search.q)
    if search.build_id:
        sessions = sessions.filter(build_id=search.build_id)
    if search.end_cause:
        sessions = sessions.filter(end_cause="" if search.end_cause == NO_END else search.end_cause)
    if search.degraded is not None:
        sessions = sessions.filter(degraded=search.degraded)
    if search.has_errors is not None:
        sessions = (
            sessions.filter(error_count__gt=0)
            if search.has_errors
            else sessions.filter(error_count=0)
        )
    sessions = sessions.filter(keyset_before("first_seen", search.after))
    rows = list(sessions.order_by("-first_seen", "-id")[: search.limit + 1])
    return page_of(rows, search.limit, lambda session: (session.first_seen, session.id))
