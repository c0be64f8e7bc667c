"""Payload codecs: JSON and msgpack round trips, tags, and the errors of bad payloads."""

from __future__ import annotations

import math

import msgpack
import pytest

from taskq import ConfigError, DecodeError, PayloadError
from taskq.codec import codec_tag, decode_payload, encode_payload

PAYLOADS = [
    {},
    {"to": "a@example.com", "n": 3, "ok": True, "none": None, "ratio": 0.25},
    [1, [2, [3, {"deep": "x"}]]],
    "héllo wörld ☃ 日本",
    -(2**53),
    None,
]


@pytest.mark.parametrize("codec", ["json", "msgpack"])
@pytest.mark.parametrize("payload", PAYLOADS, ids=repr)
def test_round_trip(codec: str, payload: object) -> None:
    tag = codec_tag(codec)
    assert decode_payload(encode_payload(payload, tag), tag) == payload


def test_tags_are_distinct_single_bytes() -> None:
    assert codec_tag("json") == b"j"
    assert codec_tag("msgpack") == b"m"


def test_unknown_codec_is_a_config_error_listing_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown codec 'pickle'.*json.*msgpack"):
        codec_tag("pickle")


def test_json_is_compact_utf8_not_ascii_escaped() -> None:
    # The size limit counts these bytes: escaping "☃" as \u2603 would triple it.
    assert encode_payload({"a": [1, 2], "s": "☃"}, b"j") == '{"a":[1,2],"s":"☃"}'.encode()


def test_msgpack_keeps_bytes_apart_from_text() -> None:
    payload = {"blob": b"\x00\xff", "text": "\x00\xff"}
    assert decode_payload(encode_payload(payload, b"m"), b"m") == payload


@pytest.mark.parametrize("codec", ["json", "msgpack"])
@pytest.mark.parametrize("payload", [object(), {"s": {1, 2}}, {"f": lambda: 1}], ids=["object", "set", "function"])
def test_unserialisable_payload_is_a_payload_error_saying_what_to_pass(codec: str, payload: object) -> None:
    with pytest.raises(PayloadError, match=r"payload cannot be encoded.*pass plain data"):
        encode_payload(payload, codec_tag(codec))


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_json_refuses_non_finite_floats(number: float) -> None:
    # json.loads would read NaN back, but no other JSON reader does.
    with pytest.raises(PayloadError):
        encode_payload({"x": number}, b"j")


def test_payload_error_is_a_value_error_too() -> None:
    with pytest.raises(ValueError):
        encode_payload(object(), b"j")


@pytest.mark.parametrize(
    ("data", "tag", "message"),
    [
        (b"{not json", b"j", "payload is not valid JSON"),
        (b'{"a": 1', b"j", "payload is not valid JSON"),
        (b'"\xff\xfe"', b"j", "payload is not valid JSON"),
        (b"\x92\x01", b"m", "payload is not valid msgpack"),  # an array of 2 with one item
        (msgpack.packb([1, 2]) + b"\x01", b"m", "payload is not valid msgpack"),  # trailing bytes
        (b"\xc1", b"m", "payload is not valid msgpack"),  # a reserved type byte
        (b"{}", b"x", "unknown payload encoding tag b'x'"),
        (b"{}", b"", "unknown payload encoding tag b''"),
    ],
)
def test_undecodable_payload_is_a_decode_error(data: bytes, tag: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_payload(data, tag)
