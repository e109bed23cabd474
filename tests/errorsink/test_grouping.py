import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from errorsink.grouping import (
    _MARKERS,
    _MASK,
    MESSAGE_MASK_LIMIT,
    fingerprint_key,
    fingerprint_parts,
    message_masked,
    message_masked_cached,
    stack_top_frame,
)

pytestmark = pytest.mark.pure


@pytest.mark.parametrize(
    ("message", "masked"),
    [
        ("Handler failed after 1500ms (attempt 3)", "Handler failed after <num>ms (attempt <num>)"),
        ("call 3f2b8c1e-9d4a-4b6e-8f00-1a2b3c4d5e6f dropped", "call <uuid> dropped"),
        ("tool 'lookup_order' timed out", "tool <quoted> timed out"),
        ('tool "book_table" timed out', "tool <quoted> timed out"),
        ("GET https://api.example.com/v1/orders/42?x=1 failed", "GET <url> failed"),
        ("object 0x7f3a9c2b10 and deadbeef00c0ffee freed", "object <hex> and <hex> freed"),
        ("codec v2 over http2", "codec v2 over http2"),
        ("latency 12.5 s,  jitter 3", "latency <num> s, jitter <num>"),
    ],
)
def test_it_masks_the_variable_parts_of_a_message(message, masked):
    assert message_masked(message) == masked


# Messages as errors write them: words, numbers, hex, quotes and URL pieces, often together.
_message_pieces = st.sampled_from(
    ["turn", "0x1f", "deadbeef00", "3f2b8c1e-9d4a-4b6e-8f00-1a2b3c4d5e6f", "12.5", "42", "'a b'",
     '"x"', "`y`", "https://h/p?q=1", "://", "v2", "ab12cd34", " ", "  ", "\n", "é", "_9", ",", ":"]
)  # fmt: skip


@given(st.lists(_message_pieces | st.text(max_size=12), max_size=30).map("".join))
def test_the_short_way_for_numbers_masks_as_the_whole_pattern_does(message):
    whole = _MASK.sub(lambda match: _MARKERS[match.lastgroup], message[:MESSAGE_MASK_LIMIT])
    assert message_masked(message) == " ".join(whole.split())


@given(st.lists(_message_pieces | st.text(alphabet="0123456789xXaf'\"`:/.,- v", max_size=12)
                | st.text(max_size=12), max_size=30).map("".join))  # fmt: skip
def test_a_message_masked_from_the_memory_of_its_digits_alike_twin_is_masked_alike(message):
    first = message_masked_cached(message)  # remembered, or computed when a digit stays
    again = message_masked_cached(message.translate(str.maketrans("1234567", "2345678")))
    assert first == message_masked(message)
    assert again == message_masked(message.translate(str.maketrans("1234567", "2345678")))


def test_messages_differing_only_in_their_digits_are_masked_once():
    from errorsink.grouping import _masked_alike

    _masked_alike.cache_clear()
    assert message_masked_cached("turn 41 of call 0x9f after 1.5 s") == (
        "turn <num> of call <hex> after <num> s")  # fmt: skip
    assert message_masked_cached("turn 97 of call 0x3f after 2.5 s") == (
        "turn <num> of call <hex> after <num> s")  # fmt: skip
    assert _masked_alike.cache_info().hits == 1
    # A digit no pattern masks is the message's own: "v2" and "v3" never share a masking.
    assert message_masked_cached("codec v2 failed") == "codec v2 failed"
    assert message_masked_cached("codec v3 failed") == "codec v3 failed"


def test_it_reads_the_innermost_python_frame_without_its_line():
    stack = (
        "Traceback (most recent call last):\n"
        '  File "agent/main.py", line 88, in run\n    handle()\n'
        '  File "agent/handler.py", line 12, in on_message\n    raise KeyError\n'
        "KeyError: 'x'"
    )
    assert stack_top_frame(stack) == "agent/handler.py in on_message"


@pytest.mark.parametrize(
    ("stack", "frame"),
    [
        ("Error: boom\n    at onTrack (src/call.js:10:5)\n    at main (src/index.js:1:1)",
         "src/call.js in onTrack"),
        ("Error: boom\n    at src/call.js:10:5", "src/call.js"),
        ("Error: …\n at …", ""),
        ("", ""),
        # A line too long to be remembered is read all the same.
        (f"Error: boom\n    at run ({'d/' * 300}x.js:1:2)", f"{'d/' * 300}x.js in run"),
    ],
)  # fmt: skip
def test_it_reads_the_innermost_javascript_frame(stack, frame):
    assert stack_top_frame(stack) == frame


def test_messages_that_differ_only_in_variable_parts_share_a_fingerprint():
    first = fingerprint_parts(code="X", message="timeout after 30 s on 'a'", stack="")
    second = fingerprint_parts(code="X", message="timeout after 45 s on 'b'", stack="")
    assert fingerprint_key(first) == fingerprint_key(second)
    assert first == ["code: X", "message: timeout after <num> s on <quoted>"]
    other_code = fingerprint_parts(code="Y", message="timeout after 30 s on 'a'", stack="")
    assert fingerprint_key(other_code) != fingerprint_key(first)


def test_a_different_top_frame_is_a_different_issue():
    at_a = fingerprint_parts(code="X", message="m", stack="Error\n at a (f.js:1:1)")
    at_b = fingerprint_parts(code="X", message="m", stack="Error\n at b (f.js:1:1)")
    assert at_a[-1] == "frame: f.js in a"
    assert fingerprint_key(at_a) != fingerprint_key(at_b)


def test_an_items_own_fingerprint_wins_and_may_name_the_default():
    own = fingerprint_parts(code="X", message="m 1", stack="", custom=["db", "pool"])
    assert own == ["custom: db", "custom: pool"]
    assert fingerprint_key(own) == fingerprint_key(
        fingerprint_parts(code="Y", message="other", stack="", custom=["db", "pool"])
    )
    with_default = fingerprint_parts(
        code="X", message="m 1", stack="", custom=["{{ default }}", "eu"]
    )
    assert with_default == ["code: X", "message: m <num>", "custom: eu"]


def test_the_key_is_a_uuid_of_the_parts():
    key = fingerprint_key(["code: X"])
    assert str(uuid.UUID(key)).replace("-", "") == key  # 32 hex digits PostgreSQL reads
    assert key == fingerprint_key(["code: X"]) != fingerprint_key(["code: X", ""])
    assert fingerprint_key(["a", "b"]) != fingerprint_key(["a\x1fb"])


def test_a_remembered_fingerprint_is_the_same_as_a_computed_one():
    from errorsink.grouping import fingerprint_cached

    parts = fingerprint_parts(code="X", message="m 5", stack="Error\n at a (f.js:1:1)")
    assert fingerprint_cached("X", "m 5", "Error\n at a (f.js:1:1)", None) == (
        fingerprint_key(parts), parts)  # fmt: skip
    assert fingerprint_cached("X", "m", "", ("db",))[1] == ["custom: db"]


def test_errors_that_differ_only_in_a_number_share_one_remembered_group():
    from errorsink.grouping import _fingerprint_of, fingerprint_cached

    _fingerprint_of.cache_clear()
    fingerprint_cached.cache_clear()
    first = fingerprint_cached("X", "turn 41 failed", "", None)
    second = fingerprint_cached("X", "turn 42 failed", "", None)
    assert first == second == (fingerprint_key(["code: X", "message: turn <num> failed"]),
                               ["code: X", "message: turn <num> failed"])  # fmt: skip
    assert _fingerprint_of.cache_info().hits == 1


def test_a_group_too_large_to_remember_is_computed_alike():
    from errorsink.grouping import GROUP_CACHED_CHARS, _fingerprint_of, fingerprint_cached

    _fingerprint_of.cache_clear()
    fingerprint_cached.cache_clear()
    custom = ("x" * GROUP_CACHED_CHARS, "{{ default }}")
    key, parts = fingerprint_cached("X", "m 7", "", custom)
    assert parts == fingerprint_parts(code="X", message="m 7", stack="", custom=list(custom))
    assert key == fingerprint_key(parts)
    assert _fingerprint_of.cache_info().currsize == 0
