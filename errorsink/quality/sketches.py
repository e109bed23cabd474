"""The two mergeable sketches of the quality figures, from kept libraries (docs/quality.md).

Distinct sessions: Apache DataSketches' theta sketch with 4,096 nominal entries. It keeps every
session's hash until it holds 4,096 of them, so a count below that is exact (40 sessions are 40),
and above it the estimate's relative standard error is about 1/sqrt(4096) = 1.6 %. Unions of
any number of bucket sketches are as accurate as one sketch of the whole window. Chosen over
HLL, which at 1,000 sessions was already 2 % off, and over exact sets of session ids, whose
size and union cost grow with the sessions of the window.

Metric values: DDSketch (Datadog's) with 1 % relative accuracy: any quantile it returns is
within 1 % of a value at that rank. Its bins add, so sketches merge exactly.

Both also take values out again, which the rollups need when a session's events move to the
build it learned later: a theta sketch by the library's A-not-B, a DDSketch by subtracting the
bin counts of a sketch of the values taken out (the library merges but has no subtraction; its
bins are plain counts per value range, so subtracting them is exact).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from itertools import chain

import datasketches
import numpy
from ddsketch import DDSketch
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


def values_dump(sketch: DDSketch) -> bytes:
    message = DDSketchProto.to_proto(sketch)
    _bins_trim(message.positiveValues)
    _bins_trim(message.negativeValues)
    return message.SerializeToString()


def _bins_trim(store) -> None:
    """The store without its leading and trailing empty bins. The library grows its bins in
    chunks of 128, so a minute's sketch of two values was 132 bins, 130 of them zero: five
    times the bytes every read fetches and parses. The offset keeps each count's index."""
    counts = store.contiguousBinCounts
    first = next((n for n, count in enumerate(counts) if count), len(counts))
    last = next((n for n in range(len(counts) - 1, first - 1, -1) if counts[n]), first - 1)
    if first == 0 and last == len(counts) - 1:
        return
    store.contiguousBinIndexOffset += first
    store.contiguousBinCounts[:] = counts[first : last + 1]


def values_load(blob: bytes | memoryview) -> DDSketch:
    message = DDSketchMessage()
    message.ParseFromString(bytes(blob))
    return DDSketchProto.from_proto(message)


def values_without(sketch: DDSketch, values: Iterable[float]) -> DDSketch:
    """The sketch without these values, which it holds (a value it does not hold leaves its bin
    at no less than zero)."""
    whole, part = DDSketchProto.to_proto(sketch), DDSketchProto.to_proto(values_sketch(values))
    _bins_subtract(whole.positiveValues, part.positiveValues)
    _bins_subtract(whole.negativeValues, part.negativeValues)
    whole.zeroCount = max(whole.zeroCount - part.zeroCount, 0.0)
    return DDSketchProto.from_proto(whole)


def _bins_subtract(whole, part) -> None:
    """Both are DDSketch protobuf stores with contiguous bins, as the library writes them."""
    counts = list(whole.contiguousBinCounts)
    for index, count in enumerate(part.contiguousBinCounts):
        at = part.contiguousBinIndexOffset + index - whole.contiguousBinIndexOffset
        if count and 0 <= at < len(counts):
            counts[at] = max(counts[at] - count, 0.0)
    whole.contiguousBinCounts[:] = counts


def values_merge(blobs: Iterable[bytes | memoryview]) -> bytes:
    """One sketch (serialized) of all these. The bins are summed straight from the protobuf
    messages with numpy: the library's own parsing adds a message's bins one by one in Python,
    which was three quarters of a 30-day read in a profile (1,008 sketches, 246,000 bins)."""
    messages = []
    for blob in blobs:
        message = DDSketchMessage()
        message.ParseFromString(bytes(blob))
        messages.append(message)
    if not messages:
        return values_dump(DDSketch(relative_accuracy=RELATIVE_ACCURACY))
    merged = DDSketchMessage()
    merged.mapping.CopyFrom(messages[0].mapping)
    merged.zeroCount = sum(message.zeroCount for message in messages)
    _bins_sum(merged.positiveValues, [message.positiveValues for message in messages])
    _bins_sum(merged.negativeValues, [message.negativeValues for message in messages])
    return merged.SerializeToString()


def _bins_sum(into, stores: list) -> None:
    """Contiguous bins of every store added up, index by index: every store's counts joined
    into one array first and summed by bin index in one call (a numpy slice per store cost
    more in converting each small store than in adding)."""
    stores = [store for store in stores if store.contiguousBinCounts]
    if not stores:
        return
    lengths = numpy.fromiter((len(store.contiguousBinCounts) for store in stores),
                             dtype=numpy.int64, count=len(stores))  # fmt: skip
    offsets = numpy.fromiter((store.contiguousBinIndexOffset for store in stores),
                             dtype=numpy.int64, count=len(stores))  # fmt: skip
    counts = numpy.fromiter(chain.from_iterable(store.contiguousBinCounts for store in stores),
                            dtype=float, count=int(lengths.sum()))  # fmt: skip
    low = int(offsets.min())
    # Each count's bin: its store's offset plus its place within the store.
    firsts = numpy.repeat(numpy.cumsum(lengths) - lengths, lengths)
    bins = numpy.repeat(offsets - low, lengths) + numpy.arange(counts.size) - firsts
    totals = numpy.bincount(bins, weights=counts)
    filled = numpy.flatnonzero(totals)
    if not filled.size:
        return
    into.contiguousBinIndexOffset = low + int(filled[0])
    into.contiguousBinCounts[:] = totals[filled[0] : filled[-1] + 1].tolist()


def blob_percentile(blob: bytes, fraction: float) -> float | None:
    """``values_percentile`` of a serialized sketch, read from its bins without building the
    library's sketch (which adds them one by one). Values below zero, which no metric has,
    take the library's path."""
    message = DDSketchMessage()
    message.ParseFromString(blob)
    if message.negativeValues.contiguousBinCounts:
        return values_percentile(values_load(blob), fraction)
    bins = numpy.asarray(message.positiveValues.contiguousBinCounts, dtype=float)
    count = int(message.zeroCount + bins.sum())
    if count == 0:
        return None
    rank = max(math.ceil(fraction * count) - 1, 0)  # nearest rank, as values_percentile
    if rank < message.zeroCount:
        return 0.0
    index = int(numpy.searchsorted(numpy.cumsum(bins), rank - message.zeroCount + 0.5,
                                   side="right"))  # fmt: skip
    key = message.positiveValues.contiguousBinIndexOffset + index
    return KeyMappingProto.from_proto(message.mapping).value(key)


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
