"""The two mergeable sketches of the quality figures, from kept libraries (docs/quality.md).

Distinct sessions: Apache DataSketches' theta sketch with 4,096 nominal entries. It keeps every
session's hash until it holds 4,096 of them, so a count below that is exact (40 sessions are 40),
and above it the estimate's relative standard error is about 1/sqrt(4096) = 1.6 %. Unions of
any number of bucket sketches are as accurate as one sketch of the whole window. Chosen over
HLL, which at 1,000 sessions was already 2 % off, and over exact sets of session ids, whose
size and union cost grow with the sessions of the window.

Metric values: DDSketch (Datadog's) with 1 % relative accuracy: any quantile it returns is
within 1 % of a value at that rank. Its bins add, so sketches merge exactly; they are stored as
a plain run of counts (``Bins``) that numpy reads without copying.

Both also take values out again, which the rollups need when a session's events move to the
build it learned later: a theta sketch by the library's A-not-B, a DDSketch by subtracting the
bin counts of a sketch of the values taken out (the library merges but has no subtraction; its
bins are plain counts per value range, so subtracting them is exact).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import datasketches
import numpy
from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping
from ddsketch.pb.ddsketch_pb2 import DDSketch as DDSketchMessage
from ddsketch.pb.proto import DDSketchProto, KeyMappingProto

THETA_LG_K = 12  # 4,096 nominal entries
EXACT_BELOW = 1 << THETA_LG_K  # a sketch counting fewer sessions holds every one: exact
RELATIVE_ACCURACY = 0.01


def sessions_sketch(session_ids: Iterable[str]) -> bytes:
    sketch = datasketches.update_theta_sketch(THETA_LG_K)
    for session_id in session_ids:
        sketch.update(session_id)
    return sketch.compact().serialize()


def sessions_union(sketches: Iterable[bytes | memoryview]) -> bytes:
    union = datasketches.theta_union(THETA_LG_K)
    for blob in sketches:
        union.update(datasketches.compact_theta_sketch.deserialize(bytes(blob)))
    return union.get_result().serialize()


def sessions_without(sketch: bytes, session_ids: Iterable[str]) -> bytes:
    """The sketch without these sessions (A-not-B)."""
    whole = datasketches.compact_theta_sketch.deserialize(bytes(sketch))
    removed = datasketches.update_theta_sketch(THETA_LG_K)
    for session_id in session_ids:
        removed.update(session_id)
    return datasketches.theta_a_not_b().compute(whole, removed.compact()).serialize()


def sessions_count(sketch: bytes | memoryview) -> tuple[int, bool]:
    """The distinct sessions a sketch counts, and whether that is exact."""
    theta = datasketches.compact_theta_sketch.deserialize(bytes(sketch))
    return round(theta.get_estimate()), not theta.is_estimation_mode()


def values_sketch(values: Iterable[float]) -> DDSketch:
    sketch = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
    for value in values:
        sketch.add(value)
    return sketch


# How a DDSketch is stored: its bins as one run of little-endian float64 counts, from its first
# to its last filled bin, after a 13-byte header (this format's number, the first bin's index,
# the count of zeros). Reads sum the bins of hundreds of sketches; taken from the library's
# protobuf, each count was a Python float built by hand (5 ms for the 60,000 bins of the last
# hour at 10 million events), where ``numpy.frombuffer`` takes these bytes as they are (0.03 ms).
# The library keeps the mapping (relative accuracy 1 %, logarithmic) and the sketch itself;
# this is only how its bins lie in a row. The metrics have no negative values (their ranges,
# errorsink/quality/metrics.py, start at zero), so only the positive bins are stored.
BINS_FORMAT = 1
_HEADER = struct.Struct("<Bid")
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)  # DDSketch's own for this accuracy


@dataclass(frozen=True)
class Bins:
    """A stored DDSketch: counts of bins ``offset``, ``offset + 1``, ... and of zeros."""

    offset: int
    counts: numpy.ndarray
    zeros: float = 0.0

    def dump(self) -> bytes:
        filled = numpy.flatnonzero(self.counts)
        if not filled.size:
            return _HEADER.pack(BINS_FORMAT, 0, self.zeros)
        counts = self.counts[filled[0] : filled[-1] + 1]
        header = _HEADER.pack(BINS_FORMAT, self.offset + int(filled[0]), self.zeros)
        return header + counts.astype("<f8").tobytes()

    @classmethod
    def load(cls, blob: bytes | memoryview) -> Bins:
        version, offset, zeros = _HEADER.unpack_from(blob)
        if version != BINS_FORMAT:
            raise ValueError(f"not a stored sketch of format {BINS_FORMAT}: {version}")
        return cls(offset, numpy.frombuffer(blob, dtype="<f8", offset=_HEADER.size), zeros)

    @classmethod
    def of(cls, sketch: DDSketch) -> Bins:
        message = DDSketchProto.to_proto(sketch)
        if message.negativeValues.contiguousBinCounts:
            raise ValueError("a metric sketch holds no negative values")
        store = message.positiveValues
        counts = numpy.asarray(store.contiguousBinCounts, dtype=float)
        return cls(store.contiguousBinIndexOffset, counts, message.zeroCount)

    def sketch(self) -> DDSketch:
        """The library's sketch of these bins."""
        message = DDSketchMessage()
        message.mapping.CopyFrom(KeyMappingProto.to_proto(_MAPPING))
        message.zeroCount = self.zeros
        message.positiveValues.contiguousBinIndexOffset = self.offset
        message.positiveValues.contiguousBinCounts[:] = self.counts.tolist()
        return DDSketchProto.from_proto(message)


def values_dump(sketch: DDSketch) -> bytes:
    return Bins.of(sketch).dump()


def values_load(blob: bytes | memoryview) -> DDSketch:
    return Bins.load(blob).sketch()


def values_without(sketch: DDSketch, values: Iterable[float]) -> DDSketch:
    """The sketch without these values, which it holds (a value it does not hold leaves its bin
    at no less than zero)."""
    whole, part = Bins.of(sketch), Bins.of(values_sketch(values))
    low = min(whole.offset, part.offset)
    counts = _summed([(whole.offset - low, whole.counts), (part.offset - low, -part.counts)])
    return Bins(low, numpy.maximum(counts, 0.0), max(whole.zeros - part.zeros, 0.0)).sketch()


def values_merge(blobs: Iterable[bytes | memoryview]) -> bytes:
    """One stored sketch of all these: bins added index by index."""
    stored = [Bins.load(blob) for blob in blobs]
    filled = [bins for bins in stored if bins.counts.size]
    zeros = float(sum(bins.zeros for bins in stored))
    if not filled:
        return Bins(0, numpy.zeros(0), zeros).dump()
    low = min(bins.offset for bins in filled)
    return Bins(low, _summed([(bins.offset - low, bins.counts) for bins in filled]), zeros).dump()


def _summed(placed: list[tuple[int, numpy.ndarray]]) -> numpy.ndarray:
    totals = numpy.zeros(max(start + counts.size for start, counts in placed))
    for start, counts in placed:
        totals[start : start + counts.size] += counts
    return totals


def blob_percentile(blob: bytes, fraction: float) -> float | None:
    """``values_percentile`` of a stored sketch, read from its bins without building the
    library's sketch (which adds them one by one), by the library's own key mapping."""
    bins = Bins.load(blob)
    count = int(bins.zeros + bins.counts.sum())
    if count == 0:
        return None
    rank = max(math.ceil(fraction * count) - 1, 0)  # nearest rank, as values_percentile
    if rank < bins.zeros:
        return 0.0
    index = int(numpy.searchsorted(numpy.cumsum(bins.counts), rank - bins.zeros + 0.5,
                                   side="right"))  # fmt: skip
    return _MAPPING.value(bins.offset + index)


def values_percentile(sketch: DDSketch, fraction: float) -> float | None:
    """The value by nearest rank, as PostgreSQL's percentile_disc and the exact figures had it
    (the value at position ceil(fraction x n) of the n in order), within the sketch's relative
    accuracy. DDSketch's own quantile interpolates ranks as q x (n - 1) instead, which for
    small n picks a lower value: the rank is given to it directly."""
    count = int(sketch.count)
    if count == 0:
        return None
    rank = max(math.ceil(fraction * count) - 1, 0)
    return sketch.get_quantile_value(0.0 if count == 1 else min((rank + 0.5) / (count - 1), 1.0))
