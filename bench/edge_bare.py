"""The baseline of bench/edge.py: a bare RN2483 reader in python + paho + pyserial, nothing else.

It opens the modem's serial port, puts the modem in receive with the commands the agent sends
(``sys reset``, ``mac pause``, ``radio set wdt 0``, ``radio rx 0``), and for every ``radio_rx`` line
re-arms the receiver (``radio rx 0``) and publishes the frame's hex at QoS 1 to
``smartcity/v1/gw/<user>/readings``, one message per frame. No decode, no integrity check, no queue,
no batching, no reconnect logic: the least a reader of this port can do. It imports nothing of the
project, so what it costs is python, paho and pyserial.

The broker comes from SMARTCITY_MQTT_HOST, SMARTCITY_MQTT_PORT, SMARTCITY_MQTT_USERNAME and
SMARTCITY_MQTT_PASSWORD (as for the agent: no secret on the command line). It runs until SIGTERM or
SIGINT, or --duration seconds; every loop is bounded by a read timeout.

    SMARTCITY_MQTT_USERNAME=gw-x SMARTCITY_MQTT_PASSWORD=... .venv/bin/python bench/edge_bare.py --port /dev/pts/7
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Any

import paho.mqtt.client as paho
import serial
from paho.mqtt.enums import CallbackAPIVersion

INIT = (("sys reset", "RN2483"), ("mac pause", ""), ("radio set wdt 0", "ok"), ("radio rx 0", "ok"))
REPLY_TIMEOUT = 2.0


def init_modem(port: serial.Serial) -> None:
    """Send the agent's initialisation sequence; each command waits (bounded) for its reply."""
    for command, want in INIT:
        port.write(command.encode() + b"\r\n")
        deadline = time.monotonic() + REPLY_TIMEOUT
        while True:
            line = port.readline().strip().decode("ascii", "replace")
            if line and (line.startswith(want) if want else line.isdigit()):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"edge_bare: no reply to {command!r} within {REPLY_TIMEOUT} s")


def main(argv: list[str] | None = None) -> int:
    """Read frames and publish them until stopped; prints the counts at the end."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--port", required=True, help="the RN2483's serial port (a pty of the simulator)")
    p.add_argument("--baudrate", type=int, default=57600)
    p.add_argument("--duration", type=float, default=3600.0, help="stop after this many seconds")
    args = p.parse_args(argv)
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    user = os.environ["SMARTCITY_MQTT_USERNAME"]
    topic = f"smartcity/v1/gw/{user}/readings"
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-edge-bare-{user}", protocol=paho.MQTTv5)
    client.username_pw_set(user, os.environ["SMARTCITY_MQTT_PASSWORD"])
    client.connect(os.environ.get("SMARTCITY_MQTT_HOST", "127.0.0.1"), int(os.environ.get("SMARTCITY_MQTT_PORT",
                                                                                            "1883")))
    client.loop_start()
    # A read timeout bounds each wait, so the loop sees a stop within a second.
    port = serial.Serial(args.port, args.baudrate, timeout=1.0, write_timeout=2.0)
    frames = errors = 0
    try:
        init_modem(port)
        print(f"edge_bare: modem in receive on {args.port}, publishing to {topic}", flush=True)
        deadline = time.monotonic() + args.duration
        while not stopping and time.monotonic() < deadline:
            try:
                line = port.readline()
            except serial.SerialException as exc:
                # The device went away (the simulator stopped first): wait for our own stop, as a service
                # would, so that the exit status is ours and paho finishes what is in flight.
                print(f"edge_bare: {args.port}: {exc}", flush=True)
                while not stopping and time.monotonic() < deadline:
                    time.sleep(0.1)
                break
            if line.startswith(b"radio_rx"):
                port.write(b"radio rx 0\r\n")  # listen again first, as the agent does
                client.publish(topic, line[8:].strip(), qos=1)
                frames += 1
            elif line.startswith(b"radio_err"):
                port.write(b"radio rx 0\r\n")
                errors += 1
    finally:
        port.close()
        client.disconnect()
        client.loop_stop()
    print(f"edge_bare: {frames} frames published, {errors} radio_err", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
