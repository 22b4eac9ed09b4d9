"""Issue 10 items 2 and 5 against a real `tally serve`: slow and idle connections,
file-descriptor exhaustion, the connection limit, clients that vanish mid-body,
and metrics summed over worker processes."""

import contextlib
import json
import re
import socket
import subprocess
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tally.server import FD_RESERVE, connection_limit, uvicorn_options
from tally.settings import Settings
from tests.observability.serving import TALLY, Server, get, tally_serve

FAST_TIMEOUTS = {"TALLY_HEADER_TIMEOUT_SECONDS": "2", "TALLY_BODY_TIMEOUT_SECONDS": "2"}
LOG_BUDGET = 50_000
PARTIAL_HEAD = b"GET /healthz HTTP/1.1\r\nHost: tally"


def _slow_body_head(key: str) -> bytes:
    # An authenticated write: its body must be read (an unauthenticated one is
    # answered 401 without reading it), so only the body deadline can end it.
    return (
        "POST /usage/events HTTP/1.1\r\nHost: tally\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: 1000\r\n\r\n"
    ).encode()


def _open(port: int, first: bytes) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=5)
    if first:
        connection.sendall(first)
    return connection


def _closed_by_server(connection: socket.socket, deadline: float) -> bool:
    connection.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        return connection.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _close_all(connections: list[socket.socket]) -> None:
    for connection in connections:
        connection.close()


def _metric(server: Server, name: str, **labels: str) -> float:
    text = get(server.port, "/metrics").body.decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def _log_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_idle_and_byte_per_second_connections_do_not_starve_the_server(tmp_path: Path) -> None:
    key = _platform_key(tmp_path)
    with tally_serve(tmp_path, env=FAST_TIMEOUTS) as server:
        before = server.log_size()
        idle = [_open(server.port, PARTIAL_HEAD) for _ in range(300)]
        slow = [_open(server.port, b"") for _ in range(50)]
        slow_body = [_open(server.port, _slow_body_head(key)) for _ in range(10)]
        head = b"GET /healthz HTTP/1.1\r\nHost: tally\r\nX-Slow: " + b"s" * 64
        probes = []
        started = time.monotonic()
        try:
            for second in range(6):
                for connection in slow:
                    # Closed by the server (OSError): what should happen.
                    with contextlib.suppress(OSError):
                        connection.send(head[second : second + 1])
                for connection in slow_body:
                    with contextlib.suppress(OSError):
                        connection.send(b" ")
                probes.append(get(server.port, "/healthz", timeout=5))
                time.sleep(max(0.0, started + second + 1 - time.monotonic()))
            deadline = time.monotonic() + 3
            everyone = idle + slow + slow_body
            still_open = [c for c in everyone if not _closed_by_server(c, deadline)]
        finally:
            _close_all(idle + slow + slow_body)
        assert [p.status for p in probes] == [200] * 6
        assert max(p.seconds for p in probes) < 1.0, [round(p.seconds, 3) for p in probes]
        assert still_open == [], f"{len(still_open)} connections outlived the header timeout"
        growth = server.log_size() - before
        assert growth < LOG_BUDGET, server.log_text()[-3000:]


def test_running_out_of_file_descriptors_logs_one_line_and_recovers(tmp_path: Path) -> None:
    with tally_serve(tmp_path, env=FAST_TIMEOUTS, max_open_files=256) as server:
        before = server.log_size()
        flood = [_open(server.port, PARTIAL_HEAD) for _ in range(400)]
        time.sleep(4)
        _close_all(flood)
        deadline = time.monotonic() + 15
        answer = None
        while time.monotonic() < deadline:
            try:
                answer = get(server.port, "/healthz", timeout=2)
                if answer.status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        assert answer is not None
        assert answer.status == 200
        grown = server.log_text()[before:]
        assert len(grown) < LOG_BUDGET
        assert "Traceback" not in grown
        assert grown.count("out of system resource") == 1, grown[-3000:]


def test_over_the_connection_limit_requests_get_the_503_envelope(tmp_path: Path) -> None:
    with tally_serve(tmp_path, env=FAST_TIMEOUTS | {"TALLY_MAX_CONNECTIONS": "20"}) as server:
        crowd = [_open(server.port, PARTIAL_HEAD) for _ in range(25)]
        time.sleep(0.3)
        try:
            refused = get(server.port, "/healthz")
        finally:
            _close_all(crowd)
        time.sleep(0.3)
        after = get(server.port, "/healthz")
        overloaded = _metric(server, "tally_http_overloaded_total", route="unmatched")
    assert overloaded == 1
    assert refused.status == 503
    assert refused.headers["retry-after"] == "1"
    assert len(refused.headers["x-request-id"]) == 32
    assert json.loads(refused.body)["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert after.status == 200


def _platform_key(tmp_path: Path) -> str:
    created = subprocess.run(  # noqa: S603 - our own console script
        [
            str(TALLY),
            "keys",
            "create",
            "--kind",
            "platform",
            "--scope",
            "write:usage",
            "--database-url",
            f"sqlite:///{tmp_path / 'serve.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return created.stdout.strip()


def _vanish_mid_body(port: int, key: str | None) -> None:
    head = (
        "POST /usage/events HTTP/1.1\r\nHost: tally\r\nContent-Type: application/json\r\n"
        "Content-Length: 100000\r\n"
    )
    if key:
        head += f"Authorization: Bearer {key}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(head.encode() + b'\r\n{"events": [' + b" " * 2000)
        time.sleep(0.05)


def _request_with_id(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(
            b"GET /billing/usage?start=sk_live_leak HTTP/1.1\r\nHost: t\r\n"
            b"X-Request-ID: probe-77\r\nAuthorization: Bearer sk_live_"
            + b"A" * 43
            + b"\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_one_json_line_per_request_and_disconnects_mid_body_are_not_errors(
    tmp_path: Path,
) -> None:
    key = _platform_key(tmp_path)
    with tally_serve(tmp_path) as server:
        before = server.log_size()
        answer = _request_with_id(server.port)
        time.sleep(0.2)
        grown = server.log_text()[before:]
        [line] = [line for line in _log_lines(grown) if line.get("route") != "/healthz"]
        assert re.search(rb"(?i)x-request-id: probe-77", answer)
        assert line["requestId"] == "probe-77"
        assert line["status"] == 401
        assert line["route"] == "/billing/usage"
        assert line["keyPrefix"] == "sk_live_AAAAAAAA"
        assert "A" * 9 not in grown
        assert "leak" not in grown

        disconnects = _metric(server, "tally_http_client_disconnects_total")
        before = server.log_size()
        for attempt in range(10):
            _vanish_mid_body(server.port, key if attempt % 2 else None)
        time.sleep(0.5)
        # Only the five with a key are read (and so vanish mid-body): the others
        # are answered 401 before a byte of their body is read.
        assert _metric(server, "tally_http_client_disconnects_total") - disconnects == 5
        grown = server.log_text()[before:]
    assert "Traceback" not in grown
    assert "Exception" not in grown
    assert key not in grown
    lines = _log_lines(grown)
    assert len(grown.splitlines()) == len(lines)  # nothing but tally's JSON lines
    assert all(line["level"] == "info" for line in lines)
    refused = [line for line in lines if line.get("route") == "/usage/events"]
    assert [line["status"] for line in refused] == [401] * 5
    assert all(line.get("route") in ("/metrics", "/usage/events") for line in lines)


def test_metrics_add_up_over_worker_processes(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with tally_serve(tmp_path, "--workers", "2", env={"TMPDIR": str(scratch)}) as server:
        [metrics_dir] = scratch.glob("tally-metrics-*")
        healthz = {"route": "/healthz", "status": "200"}
        before = _metric(server, "tally_http_requests_total", **healthz)
        for _ in range(20):
            assert get(server.port, "/healthz").status == 200
        after = _metric(server, "tally_http_requests_total", **healthz)
        files = list(metrics_dir.glob("*.db"))
    assert after - before == 20
    assert files
    assert not metrics_dir.exists(), "tally serve left its metrics directory behind"


def test_uvicorn_options_keep_connections_below_the_file_descriptor_budget() -> None:
    settings = Settings(max_connections=1000, header_timeout_seconds=7)
    assert connection_limit(settings, 20_000) == 1000
    assert connection_limit(settings, 256) == 256 - FD_RESERVE
    assert connection_limit(settings, 10) == 1
    options = uvicorn_options(settings, "127.0.0.1", 8123)
    assert options["http"] == "tally.server:NoDelayH11Protocol"
    assert options["access_log"] is False
    assert options["limit_concurrency"] <= 1000
    assert options["timeout_keep_alive"] == 5
    assert options["h11_max_incomplete_event_size"] == 16 * 1024
    assert options["proxy_headers"] is False
    loggers = options["log_config"]["loggers"]
    assert loggers["asyncio"]["filters"] == ["repeats"]
    assert loggers["uvicorn.error"]["filters"] == ["repeats"]
