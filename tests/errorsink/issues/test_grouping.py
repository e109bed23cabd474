import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from errorsink.issues.grouping import (
    _MARKERS,
    _MASK,
    MESSAGE_MASK_LIMIT,
    fingerprint_cached,
    fingerprint_computed,
    fingerprint_key,
    fingerprint_parts,
    message_masked,
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


_stack_lines = st.sampled_from(
    ["Error: turn 41 failed", "    at handle (src/agent.js:10:5)", "    at src/v2/app.js:3:1",
     "    at chunk-0x3f.js:1:1", '  File "agent/h2.py", line 12, in on_9', "    at …", "x"]
)  # fmt: skip


@given(
    st.lists(_message_pieces | st.text(alphabet="0123456789xXaf'\"`:/.,- v", max_size=12)
             | st.text(max_size=12), max_size=30).map("".join),
    st.lists(_stack_lines | st.text(max_size=12), max_size=6).map("\n".join),
)  # fmt: skip
def test_an_error_remembered_from_its_digits_alike_twin_has_its_own_fingerprint(message, stack):
    shifted = str.maketrans("1234567", "2345678")  # the twin: the same digits-alike key
    for code, text, trace in (
        ("X", message, stack),
        ("X", message.translate(shifted), stack.translate(shifted)),
    ):
        assert fingerprint_cached(code, text, trace, None) == fingerprint_computed(
            code, text, trace, None)  # fmt: skip


def test_errors_differing_only_in_their_digits_are_fingerprinted_once():
    from errorsink.issues.grouping import _fingerprint_alike

    _fingerprint_alike.cache_clear()
    first = fingerprint_cached("X", "turn 41 of 0x9f after 1.5 s", "at a (f.js:12:5)", None)
    second = fingerprint_cached("X", "turn 97 of 0x3f after 2.5 s", "at a (f.js:48:9)", None)
    assert first == second
    assert first[1] == ["code: X", "message: turn <num> of <hex> after <num> s", "frame: f.js in a"]
    assert _fingerprint_alike.cache_info().hits == 1
    # A digit no pattern masks is the error's own: "v2" and "v3" never share a fingerprint.
    assert fingerprint_cached("X", "codec v2 failed", "", None)[1][1] == "message: codec v2 failed"
    assert fingerprint_cached("X", "codec v3 failed", "", None)[1][1] == "message: codec v3 failed"
    assert fingerprint_cached("X", "m", "at a (v2/f.js:1:1)", None)[1][2] == "frame: v2/f.js in a"
    assert fingerprint_cached("X", "m", "at a (v3/f.js:1:1)", None)[1][2] == "frame: v3/f.js in a"
    odd = "é 7 ٣ ✓ 12"  # read as UTF-8 bytes: no byte of a wider character is a digit
    assert fingerprint_cached("X", odd, odd, None) == fingerprint_computed("X", odd, odd, None)


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
    parts = fingerprint_parts(code="X", message="m 5", stack="Error\n at a (f.js:1:1)")
    assert fingerprint_cached("X", "m 5", "Error\n at a (f.js:1:1)", None) == (
        fingerprint_key(parts), parts)  # fmt: skip
    assert fingerprint_cached("X", "m", "", ("db",))[1] == ["custom: db"]


def test_errors_that_differ_only_in_a_number_share_one_remembered_group():
    from errorsink.issues.grouping import _fingerprint_exact, _fingerprint_of

    _fingerprint_of.cache_clear()
    _fingerprint_exact.cache_clear()
    # "v1" keeps a digit, so these are remembered word for word, and then by masked message.
    first = fingerprint_cached("X", "v1 turn 41 failed", "", None)
    second = fingerprint_cached("X", "v1 turn 42 failed", "", None)
    assert first == second == (fingerprint_key(["code: X", "message: v1 turn <num> failed"]),
                               ["code: X", "message: v1 turn <num> failed"])  # fmt: skip
    assert _fingerprint_of.cache_info().hits == 1


def test_a_group_too_large_to_remember_is_computed_alike():
    from errorsink.issues.grouping import GROUP_CACHED_CHARS, _fingerprint_of

    _fingerprint_of.cache_clear()
    custom = ("x" * GROUP_CACHED_CHARS, "{{ default }}")
    key, parts = fingerprint_cached("X", "m 7", "", custom)
    assert parts == fingerprint_parts(code="X", message="m 7", stack="", custom=list(custom))
    assert key == fingerprint_key(parts)
    assert _fingerprint_of.cache_info().currsize == 0


def test_an_error_too_large_to_remember_is_computed_and_not_kept():
    from errorsink.issues.grouping import ERROR_CACHED_CHARS, _fingerprint_alike, _fingerprint_exact

    _fingerprint_alike.cache_clear()
    _fingerprint_exact.cache_clear()
    stack = "at a (f.js:1:1)\n" + "x" * ERROR_CACHED_CHARS
    assert fingerprint_cached("X", "m 7", stack, None) == fingerprint_computed(
        "X", "m 7", stack, None
    )
    assert _fingerprint_alike.cache_info().currsize == _fingerprint_exact.cache_info().currsize == 0
