"""The logic of bench/scaleout's helpers at tiny size: wrk's output, the steady rate, the clients.

No timing is asserted: the load generator runs against a stub server that
answers every batch, and the test checks that every body was sent exactly
once and counted.
"""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from bench import loadgen, wrkspread
from bench.loadgen import Completion
from hypothesis import given
from hypothesis import strategies as st

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:40123/billing/usage?start=2026-01-01T00%3A00%3A00Z
  4 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.34ms    3.21ms   1.02s    78.90%
    Req/Sec   325.12     40.11   410.00     70.00%
  Latency Distribution
     50%  850.00us
     75%   13.80ms
     90%   16.02ms
     99%    1.50s
  6480 requests in 10.01s, 5.12MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 3
Requests/sec:    647.35
Transfer/sec:    523.45KB
"""


def test_parse_reads_rate_latency_and_errors() -> None:
    result = wrkspread.parse(WRK_OUTPUT)
    assert result["rps"] == 647.35
    assert result["requests"] == 6480
    assert result["latency_ms"] == {
        "mean": 12.34,
        "p50": 0.85,
        "p75": 13.8,
        "p90": 16.02,
        "p99": 1500.0,
    }
    assert result["non_2xx"] == 3
    assert result["socket_errors"] == "connect 0, read 2, write 0, timeout 1"


def test_parse_without_errors_or_distribution() -> None:
    plain = "\n".join(
        line
        for line in WRK_OUTPUT.splitlines()
        if "%  " not in line and "Non-2xx" not in line and "Socket" not in line
    )
    result = wrkspread.parse(plain)
    assert result["latency_ms"] == {"mean": 12.34}
    assert (result["non_2xx"], result["socket_errors"]) == (0, "")


def test_parse_refuses_what_is_not_wrk_output() -> None:
    with pytest.raises(ValueError, match="cannot read wrk"):
        wrkspread.parse("unable to connect to 127.0.0.1:1 Connection refused")


def test_lua_script_lists_every_port() -> None:
    script = wrkspread.lua_script([8001, 8002, 8003])
    assert "local ports = {8001, 8002, 8003}" in script
    assert "thread.addr = wrk.lookup" in script


@given(
    clients=st.integers(1, 8),
    batches=st.integers(0, 60),
    interval=st.floats(0.01, 5.0),
    size=st.integers(1, 1000),
)
def test_steady_rate_of_a_constant_stream(
    clients: int, batches: int, interval: float, size: int
) -> None:
    # A batch of `size` events every `interval` seconds, in shuffled order.
    completions = [Completion(100 + number * interval, size, 1.0) for number in range(batches)]
    completions.reverse()
    rate = loadgen.steady_rate(completions, clients)
    if batches - 2 * clients < 2:
        assert rate is None
    else:
        assert rate == pytest.approx(size / interval)


def test_steady_rate_ignores_start_up_and_drain() -> None:
    # Two clients: a slow first batch and a slow last one are outside the middle.
    times = [0.0, 10.0, 11.0, 12.0, 13.0, 14.0, 40.0, 50.0]
    completions = [Completion(moment, 1000, 1.0) for moment in times]
    # Between the 2nd (10 s) and the 3rd before last (14 s): 4 batches in 4 s.
    assert loadgen.steady_rate(completions, 2) == 1000.0


class _Stub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[bytes] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            first = body not in self.seen
            self.seen.append(body)
        events = json.loads(body)["events"]
        # The first time a body comes, answer 503 once: the client must resend it.
        if first and events[0]["id"].endswith("-retry"):
            status, answer = 503, b'{"success": false}'
        else:
            status = 200
            answer = json.dumps({"data": {"accepted": len(events)}}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub_ports() -> Iterator[list[int]]:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Stub) for _ in range(2)]
    threads = [threading.Thread(target=item.serve_forever, daemon=True) for item in servers]
    for thread in threads:
        thread.start()
    _Stub.seen = []
    try:
        yield [item.server_address[1] for item in servers]
    finally:
        for item in servers:
            item.shutdown()
            item.server_close()


def test_every_body_sent_once_and_counted(
    stub_ports: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loadgen, "RETRY_AFTER", 0.0)
    bodies = [
        json.dumps({"events": [{"id": f"b{number}-{item}"} for item in range(number + 1)]}).encode()
        for number in range(12)
    ]
    bodies.append(json.dumps({"events": [{"id": "last-retry"}]}).encode())
    result = loadgen.run(stub_ports, "key", bodies, clients=3)
    assert result["errors"] == []
    assert result["accepted"] == sum(range(1, 13)) + 1
    assert result["retries_after_503"] == 1
    assert sorted(set(_Stub.seen)) == sorted(bodies)
    assert len(_Stub.seen) == len(bodies) + 1  # the 503 one twice
    assert result["latency_ms"]["n"] == len(bodies)
    assert result["client_cpu_seconds"] >= 0
