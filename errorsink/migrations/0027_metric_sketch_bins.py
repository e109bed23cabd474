# The metric sketches of the figure tables, from the library's protobuf to a plain run of bin
# counts (errorsink/quality/sketches.py, Bins), which reads take without copying. Rewritten here
# a page at a time; the conversion is this migration's own, so later changes to the module do
# not change what it does. Kept window stretches hold the old form: the reads' key format moved
# on with this change, so they are never read again, and retention deletes them within a day.

import struct

import numpy
from ddsketch.pb.ddsketch_pb2 import DDSketch as DDSketchMessage
from django.db import migrations

PAGE = 2_000
HEADER = struct.Struct("<Bid")


def bins_of_protobuf(blob: bytes) -> bytes:
    message = DDSketchMessage()
    message.ParseFromString(blob)
    store = message.positiveValues
    counts = numpy.asarray(store.contiguousBinCounts, dtype="<f8")
    filled = numpy.flatnonzero(counts)
    if not filled.size:
        return HEADER.pack(1, 0, message.zeroCount)
    header = HEADER.pack(1, store.contiguousBinIndexOffset + int(filled[0]), message.zeroCount)
    return header + counts[filled[0] : filled[-1] + 1].tobytes()


def convert(apps, schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        after = "(0,0)"
        while True:
            cursor.execute(
                # A rewritten row moves to a later address: its first byte (the format's
                # number, where a protobuf message starts with 0x0a) tells it apart.
                "SELECT ctid::text, sketch FROM errorsink_figure_metrics "
                "WHERE ctid > %s::tid AND get_byte(sketch, 0) <> 1 ORDER BY ctid LIMIT %s",
                [after, PAGE],
            )
            rows = cursor.fetchall()
            if not rows:
                return
            cursor.execute(
                "UPDATE errorsink_figure_metrics AS m SET sketch = v.sketch "
                "FROM unnest(%s::tid[], %s::bytea[]) AS v(at, sketch) WHERE m.ctid = v.at",
                [[at for at, _ in rows], [bins_of_protobuf(bytes(blob)) for _, blob in rows]],
            )
            after = rows[-1][0]


class Migration(migrations.Migration):
    dependencies = [
        ("errorsink", "0026_figure_stretches"),
    ]

    operations = [
        migrations.RunPython(convert, migrations.RunPython.noop, elidable=False),
    ]
