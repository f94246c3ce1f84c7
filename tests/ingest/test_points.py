from core.commands import Ack, AckStatus, Action, Command
from core.registry import load
from core.senml import Pack, Reading
from ingest.points import Rejects, ack_line, command_line, pack_lines, status_line
from smartcity.data import demo_registry_path

REG = load(demo_registry_path())
T = 1_700_000_000.0


def test_readings_of_one_device_and_time_become_one_point_with_registry_tags():
    pack = Pack(1, [Reading("vs-sl-101", "dim_level", 20.0, T, "%"), Reading("vs-sl-101", "power", 8.5, T, "W"),
                    Reading("vs-sl-101", "lamp_failure", False, T)])
    rejects = Rejects()
    lines = pack_lines("gw-vs-01", pack, REG, rejects)
    assert lines == ["street_light,device=vs-sl-101,gateway=gw-vs-01,gemeente=GM0626,wijk=WK062600 "
                     "dim_level=20.0,power=8.5,lamp_failure=false 1700000000000"]
    assert rejects.total == 0


def test_each_bad_reading_is_counted_by_reason_and_good_ones_kept():
    pack = Pack(1, [
        Reading("vs-sl-101", "power", 8.5, T),
        Reading("nobody", "power", 1.0, T),
        Reading("ws-sl-101", "power", 1.0, T),  # belongs to the other gateway
        Reading("vs-sl-101", "colour", 1.0, T),
        Reading("vs-oc-101", "presence", 1.0, T),  # a number where a boolean belongs
        Reading("vs-rg-001", "rain_intensity", 0.5, T + 1),
    ], errors=["record 9: junk"])
    rejects = Rejects()
    lines = pack_lines("gw-vs-01", pack, REG, rejects)
    assert len(lines) == 2
    assert dict(rejects.counts) == {"bad_record": 1, "unknown_device": 1, "wrong_gateway": 1,
                                    "unknown_metric": 1, "wrong_type": 1}
    assert "belongs to 'gw-ws-01'" in rejects.last["wrong_gateway"]


def test_status_command_and_ack_lines():
    assert status_line("gw-1", "online", T) == 'gateway_status,gateway=gw-1 state="online",online=true 1700000000000'
    cmd = Command("vs-sl-101", Action.DIM, {"level": 20}, "rule:x", id="c1", issued_at=T)
    assert command_line("gw-vs-01", cmd) == (
        'command,action=dim,device=vs-sl-101,gateway=gw-vs-01,origin=rule:x id="c1",level=20.0 1700000000000')
    ack = Ack("c1", "vs-sl-101", AckStatus.APPLIED, "sent")
    assert ack_line("gw-vs-01", ack, T) == (
        'command_ack,device=vs-sl-101,gateway=gw-vs-01,status=applied id="c1",detail="sent" 1700000000000')
