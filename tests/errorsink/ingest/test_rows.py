"""The one column list ingest writes from is the event model's: a column added to one and not
the other fails here, not in a COPY at run time."""

import pytest

from errorsink.ingest.rows import COLUMN_NAMES, EventRow
from errorsink.sessions.models import Event
from errorsink.sessions.serialise import PUBLIC_EVENT_FIELDS

pytestmark = pytest.mark.pure


def test_it_writes_every_column_of_the_event_model_but_its_id():
    columns = {field.column for field in Event._meta.concrete_fields} - {"id"}
    assert set(COLUMN_NAMES) == columns
    assert len(COLUMN_NAMES) == len(columns)


def test_the_row_type_is_the_column_list_between_its_place_and_its_fingerprint_words():
    assert EventRow._fields == ("seq", *COLUMN_NAMES, "fingerprint_parts")


def test_the_public_fields_are_model_fields():
    names = {field.name for field in Event._meta.concrete_fields}
    assert set(PUBLIC_EVENT_FIELDS) <= names
    assert not {"raw", "fingerprint", "project"} & set(PUBLIC_EVENT_FIELDS)
