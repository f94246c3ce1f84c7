"""A stand-in for `grafana-server` (no Grafana can be installed on the development machines).

A Python script that records its argv and environment in $GF_PATHS_DATA/record.json and serves
/api/health on the address and port Grafana would take from GF_SERVER_HTTP_ADDR / GF_SERVER_HTTP_PORT.
"""

from __future__ import annotations

import sys
from pathlib import Path

FAKE_GRAFANA = """\
#!{python}
import json, os, signal, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
data = os.environ["GF_PATHS_DATA"]
os.makedirs(data, exist_ok=True)
with open(os.path.join(data, "record.json"), "w") as out:
    json.dump({{"argv": sys.argv, "env": dict(os.environ), "pid": os.getpid()}}, out)
if {fail}:
    print("fake grafana: failing on purpose", flush=True)
    sys.exit(3)
class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"database": "ok", "version": "fake"}}).encode()
        self.send_response(200 if self.path == "/api/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
HTTPServer((os.environ["GF_SERVER_HTTP_ADDR"], int(os.environ["GF_SERVER_HTTP_PORT"])), Health).serve_forever()
"""


def install_fake(bin_dir: Path, name: str = "grafana-server", fail: bool = False) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / name
    script.write_text(FAKE_GRAFANA.format(python=sys.executable, fail=fail))
    script.chmod(0o755)
    return script
