"""edge/ runs on a Pi with the base install: it must not pull in server-side packages."""

import subprocess
import sys

SERVER_ONLY = ("numpy", "httpx", "fastapi", "uvicorn", "starlette", "pydantic", "ingest", "rules", "api",
               "dashboards")


def test_the_edge_command_imports_nothing_server_side():
    code = (
        "import sys, smartcity.cli as cli\n"
        "cli.build_parser(['edge'])\n"
        "import edge.main\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({SERVER_ONLY!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
