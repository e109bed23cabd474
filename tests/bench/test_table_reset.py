"""The benchmarks empty their tables between rounds with TRUNCATE, which PostgreSQL refuses
when a table that references them is left out: a new foreign key must not break `make bench`."""

import pytest

from bench.common import tables_empty
from errorsink.sessions.models import Event
from tests.ingest_helpers import error_item, items_store

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_benchmarks_can_empty_their_tables(project):
    item = error_item(project.id)
    items_store([item])
    tables_empty()
    assert not Event.objects.exists()
    # The keys go too: the same items pushed in the next round are stored again.
    items_store([item])
    assert Event.objects.count() == 1
