import pytest

from core import jsonfast
from core.commands import Ack, AckStatus, Action, Command, CommandError, parse_ack, parse_command


def test_command_round_trip():
    cmd = Command("vs-sl-101", Action.DIM, {"level": 20}, "rule:presence", expires_at=2e9)
    assert parse_command(cmd.to_json()) == cmd


def test_wire_form_has_the_contract_fields():
    obj = jsonfast.loads(Command("d", Action.DIM, {"level": 5}, "test").to_json())
    assert set(obj) == {"id", "device", "action", "params", "issued_at", "expires_at", "origin"}


@pytest.mark.parametrize(("change", "message"), [
    ({"action": "explode"}, "unknown action"),
    ({"params": {"level": 150}}, "0-100"),
    ({"params": {"level": True}}, "0-100"),
    ({"params": []}, "params"),
    ({"device": "bad id"}, "device"),
    ({"id": None}, "'id'"),
    ({"expires_at": "soon"}, "expires_at"),
])
def test_invalid_commands_are_refused_with_a_reason(change, message):
    obj = jsonfast.loads(Command("d", Action.DIM, {"level": 5}, "test").to_json())
    obj.update(change)
    with pytest.raises(CommandError, match=message):
        parse_command(jsonfast.dumps(obj))


def test_expiry():
    cmd = Command("d", Action.DIM, {"level": 5}, "t", expires_at=100.0)
    assert not cmd.expired(100.0)
    assert cmd.expired(100.1)


def test_ack_round_trip_and_errors():
    ack = Ack("abc", "d", AckStatus.APPLIED, "ok")
    assert parse_ack(ack.to_json()) == ack
    with pytest.raises(CommandError, match="status"):
        parse_ack(b'{"id":"a","device":"d","status":"maybe"}')
    with pytest.raises(CommandError, match="JSON"):
        parse_ack(b"nope")


def test_an_ack_carries_the_gateways_time_when_given():
    ack = Ack("abc", "d", AckStatus.APPLIED, "ok", at=1_700_000_000.123456)
    assert parse_ack(ack.to_json()) == ack
    assert b'"at"' not in Ack("abc", "d", AckStatus.APPLIED).to_json()  # older agents: no time, still valid
    for bad in (b'"soon"', b"true", b"[1]"):
        with pytest.raises(CommandError, match="at"):
            parse_ack(b'{"id":"a","device":"d","status":"applied","at":' + bad + b"}")
