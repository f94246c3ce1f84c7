"""decode_selected is decode_columns filtered by name: checked on random packs with base fields and bad records.

Both of its decoders are checked: the msgspec one must give exactly what the orjson one gives for every
pack it accepts (and decline the rest), and the orjson one exactly what decode_columns gives.
"""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from core.senml_columns import SenMLError, decode_columns
from core.senml_select import MAX_ERRORS, Selected, decode_selected, decode_selected_msgspec, decode_selected_orjson

NOW = 1_700_000_000.0
BASE_NAMES = ["", "d1/", "d2/"]
NAMES = ["", "m1", "m2"]
UNIVERSE = sorted({bn + n for bn in BASE_NAMES for n in NAMES})

_absent = st.just(None)
_numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(-(2**40), 2**40),
    st.sampled_from([0.5, 12.0, NOW, 2.0**28, 1e11, -1e11, 1e308, 10**30]),
)
_bad = st.sampled_from(["x", True, False, [], {}, None])
_FIELDS = {
    "bn": st.one_of(st.sampled_from(BASE_NAMES), st.sampled_from([5, None, True])),
    "n": st.one_of(st.sampled_from(NAMES), st.sampled_from([5, None, False])),
    "bt": st.one_of(_numbers, _bad),
    "t": st.one_of(_numbers, _bad),
    "v": st.one_of(_numbers, _bad),
    "vb": st.one_of(st.booleans(), st.sampled_from([1, "true", None])),
    "vs": st.one_of(st.text(max_size=3), st.sampled_from([1, None])),
    "u": st.one_of(st.sampled_from(["W", "%"]), st.sampled_from([None, 3])),
    "bu": st.one_of(st.sampled_from(["W"]), st.sampled_from([None, 3])),
    "seq": st.one_of(st.integers(0, 10), st.sampled_from([-1, "1"])),
}
# Most records look like a gateway's (a name and a number); the rest try every other field.
_typical = st.fixed_dictionaries({"n": st.sampled_from(NAMES[1:]), "v": st.floats(-1e6, 1e6)},
                                 optional={"bn": st.sampled_from(BASE_NAMES), "t": st.floats(-100, 100)})
_odd = st.fixed_dictionaries({}, optional=_FIELDS)
_record = st.one_of(_typical, _typical, _odd, st.sampled_from([1, "x", [], None]))
packs = st.lists(_record, min_size=0, max_size=25)


def _payload(records):
    return json.dumps(records).encode()


def _expected(payload, names):
    cols = decode_columns(payload, NOW)
    rows = [(names[n], float(v), t) for n, v, t in zip(cols.names, cols.values, cols.times, strict=True)
            if n in names and not isinstance(v, str)]
    strings = sum(1 for n, v in zip(cols.names, cols.values, strict=True) if n in names and isinstance(v, str))
    return cols, rows, strings


def _assert_same(a: Selected, b: Selected) -> None:
    assert a.seq == b.seq and type(a.seq) is type(b.seq)
    for x, y in ((a.series, b.series), (a.values, b.values), (a.times, b.times)):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()  # bit for bit: -0.0 is not 0.0 here
    assert (a.records, a.not_used, a.bad_value, a.bad_record, a.errors) == \
        (b.records, b.not_used, b.bad_value, b.bad_record, b.errors)


def _event(name):
    if currently_in_test_context():  # how often each decoder ran: pytest --hypothesis-show-statistics
        event(name)


def _check(payload, names, every_name=False) -> bool | None:
    """decode_selected == the orjson decoder == the msgspec one (when it accepts) == decode_columns filtered.

    every_name: names holds the name of every record, so the bad records are decode_columns' errors.
    Returns whether the msgspec decoder read the pack (None if the pack raised SenMLError).
    """
    try:
        cols, rows, strings = _expected(payload, names)
    except SenMLError as exc:
        assert decode_selected_msgspec(payload, names, NOW) is None
        for decode in (decode_selected, decode_selected_orjson):
            with pytest.raises(SenMLError) as raised:
                decode(payload, names, NOW)
            assert str(raised.value) == str(exc)
        _event("SenMLError")
        return None
    slow = decode_selected_orjson(payload, names, NOW)
    assert not slow.fast
    assert slow.series.dtype == np.intp and slow.values.dtype == np.float64 and slow.times.dtype == np.float64
    assert list(zip(slow.series.tolist(), slow.values.tolist(), slow.times.tolist(), strict=True)) == rows
    assert slow.bad_value == strings and slow.seq == cols.seq
    assert slow.not_used + slow.bad_value + slow.bad_record + len(slow) <= slow.records
    if every_name:
        assert slow.bad_record == len(cols.errors) and slow.errors == cols.errors[:MAX_ERRORS]
    fast = decode_selected_msgspec(payload, names, NOW)
    if fast is not None:
        assert fast.fast
        _assert_same(fast, slow)
    got = decode_selected(payload, names, NOW)
    assert got.fast == (fast is not None)
    _assert_same(got, slow)
    _event("msgspec decoder" if got.fast else "orjson decoder")
    return fast is not None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=packs, chosen=st.sets(st.sampled_from(UNIVERSE)))
def test_selected_records_are_decode_columns_filtered_by_name(records, chosen):
    names = {name: 10 + i for i, name in enumerate(sorted(chosen))}
    payload = _payload(records)
    if _check(payload, names) is not None:
        assert decode_selected(payload, names, NOW).records == len(records)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=packs)
def test_with_every_name_selected_the_errors_are_those_of_decode_columns(records):
    names = {name: i for i, name in enumerate(UNIVERSE)}
    payload = _payload(records)
    if _check(payload, names, every_name=True) is not None:
        assert decode_selected(payload, names, NOW).not_used == 0


# Packs of records whose every field has the type decode_columns requires (the values are still free to
# be out of range, relative, missing, strings): the msgspec decoder must read every such pack.
_WELL_TYPED = {
    "bn": st.sampled_from(BASE_NAMES),
    "n": st.sampled_from(NAMES),
    "bt": _numbers,
    "t": st.one_of(_numbers, _absent),
    "v": st.one_of(_numbers, _absent),
    "vb": st.booleans(),
    "vs": st.text(max_size=3),
    "u": st.sampled_from(["W", "%", "°C", None]),
    "bu": st.sampled_from(["W", None]),
    "seq": st.integers(0, 2**63 - 1),
    "bver": st.integers(0, 20),
    "ut": st.floats(0, 1e6),
    "vd": st.text(max_size=3),
}
_well_typed_packs = st.lists(st.one_of(_typical, st.fixed_dictionaries({}, optional=_WELL_TYPED)),
                             min_size=1, max_size=25)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=_well_typed_packs, chosen=st.sets(st.sampled_from(UNIVERSE)))
def test_the_msgspec_decoder_reads_every_well_typed_pack_as_the_orjson_one(records, chosen):
    names = {name: 10 + i for i, name in enumerate(sorted(chosen))}
    assert _check(_payload(records), names) is True


# JSON written token by token, to reach what json.dumps never writes: duplicate keys, numbers beyond
# float or 64-bit range, NaN, invalid UTF-8 and lone surrogates, unknown fields, deep nesting.
_DEEP = "[" * 1100 + "]" * 1100
_GOOD_TOKENS = st.one_of(
    _numbers.map(json.dumps),
    st.integers(-(10**300), 10**300).map(str),
    st.sampled_from(NAMES + BASE_NAMES + ["W"]).map(json.dumps),
    st.sampled_from(["null", "true", "false", "-0", "-0.0", "1.0", "1E5", "0e999", "1e-400", "9223372036854775808",
                     "18446744073709551616", "1.7976931348623157e308", '"m\\u0031"', '"\\u0000"', '"\\ud83d\\ude00"']),
).map(str.encode) | st.just(b'"\xc2\xb0C"')
_ODD_TOKENS = st.one_of(
    st.integers(-(10**400), 10**400).map(str),
    st.sampled_from(["1e400", "-1e309", "1" + "0" * 400, "-9223372036854775809", "1.7976931348623159e308", "NaN",
                     "Infinity", "[]", "{}", '{"k":1e400}', "[[1]]", _DEEP, '"\\ud800"', '"\\udc00"']),
).map(str.encode) | st.sampled_from([b'"\xff"', b'"\xed\xa0\x80"', b'"m\xc3"'])
_TOKENS = st.one_of(_GOOD_TOKENS, _GOOD_TOKENS, _GOOD_TOKENS, _ODD_TOKENS)
_raw_number = st.one_of(_numbers.map(json.dumps), st.integers(-(10**300), 10**300).map(str)).map(str.encode) | \
    st.sampled_from([b"-0", b"-0.0", b"1E5", b"0e999", b"1e-400", b"1.7976931348623157e308"])
_raw_string = st.text(max_size=3).map(json.dumps).map(str.encode) | st.sampled_from([b'"m\\u0031"', b'"\xc2\xb0C"'])
# A token of the type the field wants, most of the time: packs the msgspec decoder reads, with odd JSON.
_FITTING = {"bn": st.sampled_from(BASE_NAMES).map(json.dumps).map(str.encode),
            "n": st.sampled_from(NAMES).map(json.dumps).map(str.encode),
            "bt": _raw_number, "t": _raw_number | st.just(b"null"), "v": _raw_number | st.just(b"null"),
            "vb": st.sampled_from([b"true", b"false"]), "vs": _raw_string, "u": _raw_string | st.just(b"null"),
            "bu": _raw_string | st.just(b"null"), "seq": st.integers(0, 2**64).map(str).map(str.encode),
            "bver": _raw_number, "ut": _raw_number}
_KEYS = st.sampled_from([*_FITTING, "x", "foo_", "\\u006e", "\\u0076"])
_field = _KEYS.flatmap(lambda k: st.tuples(st.just(k.encode()), st.one_of(*[_FITTING[k]] * 3, _TOKENS)
                                           if k in _FITTING else _TOKENS))
_raw_record = st.lists(_field, max_size=5).map(lambda kv: b"{" + b",".join(b'"' + k + b'":' + v for k, v in kv) + b"}")
_raw_packs = st.lists(st.one_of(_raw_record, _raw_record, st.sampled_from([b"1", b'"x"', b"[]", b"null"])),
                      min_size=0, max_size=8).map(lambda recs: b"[" + b",".join(recs) + b"]")
_FORMS = [bytes, bytearray, memoryview, lambda b: b.decode("utf-8", "surrogateescape")]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=_raw_packs, form=st.sampled_from(_FORMS), chosen=st.sets(st.sampled_from(UNIVERSE)))
def test_both_decoders_agree_on_raw_json(payload, form, chosen):
    names = {name: 10 + i for i, name in enumerate(sorted(chosen))}
    _check(form(payload), names)


N = {"m1": 0, "m2": 1, "d1/m1": 2, "": 3}


@pytest.mark.parametrize(("payload", "fast"), [
    # Numbers: ints are floats; beyond float range orjson fails the pack, and so must msgspec.
    (b'[{"n":"m1","v":100000000000000000000000000000,"t":18446744073709551617}]', True),
    (b'[{"n":"m1","v":9223372036854775807},{"n":"m1","v":-9223372036854775809}]', True),
    (b'[{"n":"m1","v":-0},{"n":"m1","v":-0.0},{"n":"m1","v":1e-400},{"n":"m1","v":0e999}]', True),
    (b'[{"n":"m1","v":1e400}]', None),
    (b'[{"n":"m1","v":1' + b"0" * 400 + b"}]", None),
    (b'[{"n":"m1","v":NaN}]', None),
    (b'[{"n":"m1","v":-Infinity}]', None),
    (b'[{"n":"m1","v":true}]', False),
    (b'[{"n":"m1","v":"1"}]', False),
    (b'[{"n":"m1","vb":1}]', False),
    # Null is not the same as absent for bn, bt, n, vb, vs: those records are bad, read by orjson.
    (b'[{"bn":null,"n":"m1","v":1}]', False),
    (b'[{"bt":null,"n":"m1","v":1}]', False),
    (b'[{"n":null,"v":1}]', False),
    (b'[{"n":"m1","vb":null}]', False),
    (b'[{"n":"m1","v":null,"t":null,"u":null,"bu":null,"vs":"on"}]', True),
    # seq: a non-negative integer in the first record; orjson reads integers beyond 64 bits as floats.
    (b'[{"seq":1.0,"n":"m1","v":1}]', None),
    (b'[{"seq":true,"n":"m1","v":1}]', None),
    (b'[{"seq":-1,"n":"m1","v":1}]', None),
    (b'[{"seq":9223372036854775807,"n":"m1","v":1}]', True),
    (b'[{"seq":9223372036854775808,"n":"m1","v":1}]', False),
    (b'[{"seq":18446744073709551616,"n":"m1","v":1}]', None),
    (b'[{"n":"m1","v":1},{"seq":"later records may carry anything"}]', False),
    # Duplicate keys: the last one wins in both.
    (b'[{"n":"m1","n":"m2","v":1,"v":2}]', True),
    (b'[{"n":"m1","v":1,"v":null}]', True),
    (b'[{"n":5,"n":"m1","v":1}]', False),
    (b'[{"\\u006e":"m\\u0031","v":1}]', True),
    # Unknown fields are left to orjson, which checks them: UTF-8, range, depth.
    (b'[{"n":"m1","v":1,"x":1}]', False),
    (b'[{"n":"m1","v":1,"x":1e400}]', None),
    (b'[{"n":"m1","v":1,"x":"\xff"}]', None),
    (b'[{"n":"m1","v":1,"x":' + _DEEP.encode() + b"}]", None),
    (b'[{"n":"m1","v":1,"x":' + b"[" * 500 + b"]" * 500 + b"}]", False),
    (b'[{"n":"m1","v":1,"bver":10,"ut":5,"s":1.5,"bv":1,"bs":2,"vd":"AA=="}]', True),
    (b'[{"n":"m1","v":1,"bver":1e400}]', None),
    (b'[{"n":"m1","v":1,"u":"\xff"}]', None),
    (b'[{"n":"m1","v":1,"u":"\xc2\xb0C"}]', True),
    ('[{"n":"m1","v":1,"u":"\ud800"}]', None),
    ('[{"n":"m1","v":1,"u":"\\ud800"}]', None),
    # Per-record errors the msgspec decoder gives itself, and packs it leaves to orjson.
    (b'[{"n":"m1"},{"n":"m1","v":1,"t":1e308},{"bt":1e308,"n":"m1","v":1,"t":1e308},{"n":"x","v":1}]', True),
    (b'[{"bt":-1e308,"n":"m1","vs":"on","t":-1e308},{"bt":5,"v":1},{"bu":"W"}]', True),
    (b'[{"n":"m1","v":1},1]', False),
    (b'[{"n":"m1","v":1}] x', None),
    (b"[]", None),
    (b'{"n":"m1","v":1}', None),
])
def test_edge_cases_decode_alike(payload, fast):
    """fast: True if the msgspec decoder reads the pack, False if it leaves it to orjson, None if SenMLError."""
    assert _check(payload, N) is fast


def test_a_non_contiguous_memoryview_is_read_by_orjson():
    payload = memoryview(b'[{"n":"m1","v":1}]' * 2)[::2]
    with pytest.raises(SenMLError):
        decode_selected(payload, N, NOW)


def test_a_gateway_pack():
    pack = [{"bn": "occ-1/", "bt": NOW - 5, "seq": 7, "n": "presence", "vb": True},
            {"n": "count", "v": 3},
            {"bn": "sl-1/", "n": "power", "v": 12.5, "t": 1.5, "u": "W"},
            {"bn": "occ-2/", "n": "presence", "vb": False, "t": 2}]
    got = decode_selected(_payload(pack), {"occ-1/presence": 0, "occ-2/presence": 1}, NOW)
    assert got.seq == 7
    assert got.series.tolist() == [0, 1]
    assert got.values.tolist() == [1.0, 0.0]
    assert got.times.tolist() == [NOW - 5, NOW - 3]
    assert (got.records, got.not_used, got.bad_value, got.bad_record) == (4, 2, 0, 0)
    assert got.fast  # a well-formed pack is decoded by msgspec


def test_relative_times_are_from_reception_and_strings_are_bad_values():
    pack = [{"bn": "d1/", "n": "m1", "v": 1, "t": -10}, {"n": "m2", "vs": "on"}, {"n": "m1", "v": 2}]
    got = decode_selected(_payload(pack), {"d1/m1": 0, "d1/m2": 1})
    assert got.times[0] < got.times[1] and abs(got.times[1] - __import__("time").time()) < 5
    assert got.bad_value == 1 and got.series.tolist() == [0, 0]


def test_unselected_records_are_not_converted():
    """A record no rule reads is not checked at all: its bad time is not the consumer's problem."""
    pack = [{"bn": "d1/", "n": "m1", "v": "x", "t": 1e308}, {"n": "m2", "v": 1}]
    got = decode_selected(_payload(pack), {"d1/m2": 4}, NOW)
    assert (got.not_used, got.bad_record, got.series.tolist()) == (1, 0, [4])


def test_error_messages_are_bounded_and_counts_are_not():
    pack = [{"bn": "d1/", "n": "m1", "v": True}] * (MAX_ERRORS * 3)
    got = decode_selected(_payload(pack), {"d1/m1": 0}, NOW)
    assert got.bad_record == MAX_ERRORS * 3 and len(got.errors) == MAX_ERRORS
    assert got.errors[0] == "record 0: 'v' must be a finite number: True"
    assert not got.fast  # a boolean v is not a number to msgspec either: the pack is read by orjson


@pytest.mark.parametrize("payload", [b"", b"{}", b"[]", b"\x00garbage", b'[{"seq": -1}]', "[1"])
def test_unreadable_packs_raise_senml_error(payload):
    with pytest.raises(SenMLError):
        decode_selected(payload, {}, NOW)


def test_empty_selection_gives_empty_typed_columns():
    got = decode_selected(b'[{"bn":"d1/","n":"m1","v":1}]', {}, NOW)
    assert len(got) == 0 and got.series.dtype == np.intp and got.times.dtype == np.float64
