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
    return DDSketchProto.to_proto(sketch).SerializeToString()


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
    """Contiguous bins of every store added up, index by index."""
    stores = [store for store in stores if store.contiguousBinCounts]
    if not stores:
        return
    low = min(store.contiguousBinIndexOffset for store in stores)
    high = max(store.contiguousBinIndexOffset + len(store.contiguousBinCounts) for store in stores)
    totals = numpy.zeros(high - low)
    for store in stores:
        start = store.contiguousBinIndexOffset - low
        totals[start : start + len(store.contiguousBinCounts)] += store.contiguousBinCounts
    into.contiguousBinIndexOffset = low
    into.contiguousBinCounts[:] = totals.tolist()


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
