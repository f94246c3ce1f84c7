"""TB IoT Gateway 3.8.5's own serial connector, taught the RN2483's receive loop (nothing else).

TB's serial support is the custom connector it ships in thingsboard_gateway/extensions/serial
(``SerialConnector``, ``SerialDevice``, ``SerialUplinkConverter``): a reader thread per device that
reads its port one byte at a time up to the delimiter, converts each line with the uplink converter and
queues it for the gateway service (storage, then MQTT to ``v1/gateway/telemetry``). It only writes to
the port for RPCs and attribute updates, so it cannot put an RN2483 in receive nor re-arm it after a
frame: this device subclass adds exactly that (the commands bench/edge_bare.py and the agent send),
and reads and converts through TB's unchanged code. bench/edge_tb.py copies this file into the venv's
extensions/rn2483/, where TB's module loader looks for a connector of type "rn2483".
"""

from time import monotonic

from thingsboard_gateway.extensions.serial import custom_serial_connector as tb_serial
from thingsboard_gateway.extensions.serial.custom_serial_connector import SerialConnector, SerialDevice
from thingsboard_gateway.extensions.serial.custom_serial_uplink_converter import SerialUplinkConverter

INIT = (("sys reset", "RN2483"), ("mac pause", ""), ("radio set wdt 0", "ok"), ("radio rx 0", "ok"))
REPLY_TIMEOUT = 2.0


class RN2483Device(SerialDevice):
    """SerialDevice plus the modem's initialisation and a re-arm after every radio_rx / radio_err line."""

    def _line(self):
        return self._SerialDevice__read_data_from_serial()  # TB's byte-at-a-time reader, unchanged

    def _init_modem(self):
        for command, want in INIT:
            self.write(f"{command}\r\n".encode())
            deadline = monotonic() + REPLY_TIMEOUT
            while True:
                line = self._line().strip().decode("ascii", "replace")
                if line and (line.startswith(want) if want else line.isdigit()):
                    break
                if monotonic() > deadline:
                    raise RuntimeError(f"RN2483: no reply to {command!r} within {REPLY_TIMEOUT} s")

    def run(self):
        self.stopped = False
        stop = self._SerialDevice__connector_stopped
        while not stop.is_set() and not self.stopped and self.get_serial() is None:
            stop.wait(1.0)
        try:
            self._init_modem()
        except Exception as e:  # TB's device threads log and stop
            self._SerialDevice__log.error("RN2483 %s: %s", self.name, e)
            self.stop()
            return
        self._SerialDevice__log.info("RN2483 %s in receive", self.name)
        while not stop.is_set() and not self.stopped:
            line = self._line()
            if line.startswith(b"radio_rx"):
                self.write(b"radio rx 0\r\n")  # listen again first, as the agent does
                try:
                    self.uplink_queue.put(self.uplink_converter.convert(None, line))
                except Exception as e:  # a bad line is logged, the reader goes on
                    self._SerialDevice__log.error("convert %r: %s", line, e)
            elif line.startswith(b"radio_err"):
                self.write(b"radio rx 0\r\n")


# SerialConnector builds its devices from the module-level name SerialDevice; point it at ours.
tb_serial.SerialDevice = RN2483Device


class RN2483Connector(SerialConnector):
    """TB's SerialConnector, whose devices are RN2483Devices."""


__all__ = ["RN2483Connector", "RN2483Device", "SerialUplinkConverter"]  # the loader finds classes by name here
