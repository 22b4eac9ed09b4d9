"""wrk against one or several server ports: a Lua setup() gives each wrk thread a port.

wrk takes one URL; its `setup(thread)` hook may change the address a
thread connects to, so with one thread per port the connections are spread
evenly over the server processes (each thread opens connections / threads
of them). The CPU time wrk used is taken from getrusage of the reaped child.
"""

import re
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from typing import Any

SPREAD_LUA = """\
-- Written by bench/wrkspread.py: thread i connects to ports[i mod #ports].
local ports = {{{ports}}}
local created = 0
function setup(thread)
  local port = ports[created % #ports + 1]
  created = created + 1
  thread.addr = wrk.lookup("127.0.0.1", tostring(port))[1]
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def wrk_path() -> str | None:
    return shutil.which("wrk")


def lua_script(ports: Sequence[int]) -> str:
    return SPREAD_LUA.format(ports=", ".join(str(port) for port in ports))


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse(output: str) -> dict[str, Any]:
    """Requests/s, latency (ms: mean and the --latency percentiles), errors, from wrk's output."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None:
        raise ValueError(f"cannot read wrk's output:\n{output[-1000:]}")
    latency: dict[str, float] = {}
    mean = re.search(r"^\s+Latency\s+([\d.]+)(us|ms|s|m|h)\b", output, re.MULTILINE)
    if mean:
        latency["mean"] = _ms(*mean.groups())
    for share, value, unit in re.findall(
        r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\b", output, re.MULTILINE
    ):
        latency[f"p{share}"] = _ms(value, unit)
    requests = re.search(r"(\d+) requests in ", output)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors:([^\n]*)", output)
    return {
        "rps": float(rate.group(1)),
        "requests": int(requests.group(1)) if requests else 0,
        "latency_ms": latency,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": socket_errors.group(1).strip() if socket_errors else "",
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    wrk: str, ports: Sequence[int], path: str, key: str, connections: int, seconds: float
) -> dict[str, Any]:
    """GET path with `connections` keep-alive connections over `ports` for `seconds`."""
    threads = len(ports) if len(ports) > 1 else min(2, connections)
    with tempfile.NamedTemporaryFile("w", prefix="tally-wrk-", suffix=".lua") as script:
        script.write(lua_script(ports))
        script.flush()
        command = [
            wrk,
            f"-t{threads}",
            f"-c{max(connections, threads)}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            script.name,
            "-H",
            f"Authorization: Bearer {key}",
            f"http://127.0.0.1:{ports[0]}{path}",
        ]
        cpu_before = _children_cpu()
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        cpu = _children_cpu() - cpu_before
    result = parse(done.stdout + done.stderr)
    return result | {
        "tool": f"wrk -t{threads} -c{max(connections, threads)}",
        "client_cpu_seconds": cpu,
        "client_cpu_share": cpu / seconds,
    }
