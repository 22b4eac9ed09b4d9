"""`tally events import`: files of events through the same ingestion as the API."""

import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import simplejson
from sqlalchemy import select
from typer.testing import CliRunner

from tally.cli import app
from tally.db.engine import Database
from tally.db.models import Base
from tally.usage.importer import CSV_FIELDS, ImportSummary, Rejection, import_events
from tests.factories import Api, event

SINCE = "2000-01-01T00:00:00Z"


@pytest.fixture
def companies(api: Api) -> dict[str, str]:
    """A minutes and a credits company, prices, and two events already stored."""
    acme = api.company("Acme Corp", "minutes")
    globex = api.company("Globex", "credits")
    api.rule(
        costKey="interview_minutes", baseCost=1, costPerMinute=Decimal("0.5"), effectiveFrom=SINCE
    )
    api.ingest(event(acme, "api-1"), event(acme, "api-2"))
    return {"acme": acme, "globex": globex}


def _lines(c: dict[str, str]) -> list[dict[str, Any] | str | None]:
    """Events, None for a blank line, or a raw line; comments give the outcome."""
    acme, globex = c["acme"], c["globex"]
    return [
        event(acme, "f1", minutes=Decimal("12.5")),  # 1 accepted
        event(acme, "f2", interviewId="iv-1", isTest=True),  # 2 accepted
        None,  # 3 blank, skipped
        '{"id": "broken",',  # 4 bad JSON
        event(acme, "f1", minutes=Decimal("12.50")),  # 5 duplicate of line 1
        event(acme, "api-1"),  # 6 duplicate of an event stored through the API
        event(acme, "f3", minutes=-1),  # 7 bad field
        event(str(uuid.uuid4()), "f4"),  # 8 unknown company
        event(acme, "f1", minutes=3),  # 9 same id as line 1, another payload
        "[1, 2]",  # 10 not an object
        event(globex, "g1", agentFocus="SCREENING"),  # 11 accepted
        event(acme, "api-2", minutes=11),  # 12 conflicts with a stored event
    ]


REJECTED = [4, 7, 8, 9, 10, 12]


def _ndjson_line(line: dict[str, Any] | str | None) -> str:
    if line is None:
        return ""
    return line if isinstance(line, str) else simplejson.dumps(line, use_decimal=True)


def _ndjson(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join(_ndjson_line(line) + "\n" for line in lines))
    return path


def _csv_cell(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _csv(path: Path, lines: list[Any]) -> Path:
    rows = [",".join(CSV_FIELDS)]
    for line in lines:
        if line is None:
            rows.append("")
        elif isinstance(line, str):
            rows.append('broken,"unterminated' if line.startswith("{") else "1,2")
        else:
            rows.append(",".join(_csv_cell(line.get(name, "")) for name in CSV_FIELDS))
    path.write_text("\n".join(rows) + "\n")
    return path


def _snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    with db.transaction(write=False) as session:
        return {
            table.name: sorted(tuple(map(str, row)) for row in session.execute(select(table)))
            for table in Base.metadata.sorted_tables
        }


def _import(db: Database, path: Path, *flags: str) -> Any:
    return CliRunner().invoke(
        app, ["events", "import", str(path), "--database-url", db.url, *flags]
    )


@pytest.mark.parametrize("chunk_size", [1000, 2])
def test_ndjson_summary_names_every_rejected_line(
    tmp_path: Path, db: Database, companies: dict[str, str], chunk_size: int
) -> None:
    path = _ndjson(tmp_path / "events.ndjson", _lines(companies))
    summary = import_events(db, path, chunk_size=chunk_size)
    assert (summary.accepted, summary.duplicates, summary.rejected) == (3, 2, 6)
    assert [rejection.line for rejection in summary.rejections] == REJECTED
    reasons = {rejection.line: rejection.reason for rejection in summary.rejections}
    assert reasons[4].startswith("invalid JSON")
    assert reasons[7].startswith("minutes:")
    assert reasons[8] == "companyId: no company with this id"
    assert reasons[9] == reasons[12] == "id: already used with a different payload"
    assert reasons[10] == "not a JSON object"


def test_cli_prints_the_summary_and_a_rerun_stores_nothing_new(
    tmp_path: Path, db: Database, companies: dict[str, str]
) -> None:
    path = _ndjson(tmp_path / "events.jsonl", _lines(companies))
    first = _import(db, path)
    assert first.exit_code == 1, first.output
    assert "accepted 3, duplicates 2, rejected 6" in first.stdout
    assert "line 8: companyId: no company with this id" in first.stdout
    stored = _snapshot(db)
    again = _import(db, path, "--chunk-size", "3")
    assert again.exit_code == 1
    assert "accepted 0, duplicates 5, rejected 6" in again.stdout
    assert _snapshot(db) == stored


def test_a_clean_file_exits_zero(tmp_path: Path, db: Database, companies: dict[str, str]) -> None:
    path = _ndjson(tmp_path / "clean.ndjson", [event(companies["acme"], f"c{n}") for n in range(5)])
    result = _import(db, path)
    assert result.exit_code == 0, result.output
    assert "accepted 5, duplicates 0, rejected 0" in result.stdout


def test_csv_gives_the_same_outcome_one_line_lower(
    tmp_path: Path, db: Database, companies: dict[str, str]
) -> None:
    lines = _lines(companies)
    lines[6] = event(companies["acme"], "f3", minutes="abc")  # not a number
    path = _csv(tmp_path / "events.csv", lines)
    summary = import_events(db, path, chunk_size=3)
    assert (summary.accepted, summary.duplicates, summary.rejected) == (3, 2, 6)
    assert [rejection.line for rejection in summary.rejections] == [n + 1 for n in REJECTED]
    reasons = {rejection.line: rejection.reason for rejection in summary.rejections}
    assert reasons[5].startswith("invalid CSV")
    assert reasons[8] == "minutes: 'abc' is not a number"
    assert reasons[11] == "expected 8 cells, found 2"


def test_csv_flags_bad_booleans_and_headers(
    tmp_path: Path, db: Database, companies: dict[str, str]
) -> None:
    acme = companies["acme"]
    path = tmp_path / "flags.csv"
    path.write_text(
        "id,companyId,costKey,occurredAt,isTest\n"
        f"t1,{acme},interview_minutes,2026-02-10T10:00:00Z,TRUE\n"
        f"t2,{acme},interview_minutes,2026-02-10T10:00:00Z,0\n"
        f"t3,{acme},interview_minutes,2026-02-10T10:00:00Z,maybe\n"
    )
    summary = import_events(db, path)
    assert summary.rejections == [Rejection(4, "isTest: 'maybe' is not true, false, 1 or 0")]
    assert summary.accepted == 2
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("id,company\n")
    result = _import(db, bad_header)
    assert result.exit_code == 2
    assert _import(db, tmp_path.joinpath("x.txt")).exit_code == 2


def test_strict_stores_nothing_of_a_chunk_with_a_bad_line(
    tmp_path: Path, db: Database, companies: dict[str, str]
) -> None:
    path = _ndjson(tmp_path / "events.ndjson", _lines(companies))
    before = _snapshot(db)
    result = _import(db, path, "--strict")
    assert result.exit_code == 1
    assert "line 4: invalid JSON" in result.stdout
    assert "stopped at line 4" in result.stdout
    assert _snapshot(db) == before


def test_strict_reports_the_first_bad_line_even_before_an_unparsable_one(
    tmp_path: Path, db: Database, companies: dict[str, str]
) -> None:
    acme = companies["acme"]
    lines = [event(acme, "s1"), event(str(uuid.uuid4()), "s2"), "not json", event(acme, "s3")]
    before = _snapshot(db)
    summary = import_events(db, _ndjson(tmp_path / "s.ndjson", lines), strict=True)
    assert summary.stopped
    assert summary.rejections == [Rejection(2, "companyId: no company with this id")]
    assert _snapshot(db) == before


def test_strict_keeps_the_chunks_before_the_bad_one(
    tmp_path: Path, db: Database, companies: dict[str, str]
) -> None:
    acme = companies["acme"]
    lines = [event(acme, "k1"), event(acme, "k2"), event(acme, "k3"), event(acme, "k3", minutes=1)]
    summary = import_events(db, _ndjson(tmp_path / "k.ndjson", lines), strict=True, chunk_size=2)
    assert (summary.accepted, summary.rejected, summary.stopped) == (2, 1, True)
    assert summary.rejections == [Rejection(4, "id: already used with a different payload")]


def _report_of(api: Api, company_id: str) -> dict[str, Any]:
    data = api.usage(companyId=company_id, start="2025-01-01", end="2027-01-01").json()["data"]
    entry = data["companies"][0]
    return {key: value for key, value in entry.items() if key not in ("companyId", "companyName")}


def _traffic(company_id: str, prefix: str) -> list[dict[str, Any]]:
    minutes = [Decimal("12.345678"), Decimal("0.5"), 7, Decimal("10000")]
    return [
        event(
            company_id,
            f"{prefix}-{n}",
            occurredAt=f"2026-0{1 + n % 3}-1{n % 10}T0{n % 10}:15:00Z",
            minutes=minutes[n % 4],
            interviewId=f"{prefix}-iv-{n // 3}",
            agentFocus="SCREENING" if n % 2 else None,
            costKey="interview_minutes",
        )
        for n in range(30)
    ]


@pytest.mark.parametrize("billing", ["minutes", "credits"])
@pytest.mark.parametrize("writer", ["ndjson", "csv"])
def test_imported_usage_equals_usage_sent_through_the_api(
    tmp_path: Path, api: Api, db: Database, billing: str, writer: str
) -> None:
    api.rule(
        costKey="interview_minutes",
        baseCost=1,
        includedMinutes=5,
        costPerMinute=Decimal("0.3"),
        effectiveFrom=SINCE,
    )
    through_api = api.company("Via API", billing)
    imported = api.company("Via file", billing)
    assert api.ingest(*_traffic(through_api, "a"))["accepted"] == 30
    events = [{k: v for k, v in e.items() if v is not None} for e in _traffic(imported, "b")]
    write: Callable[[Path, list[Any]], Path] = _ndjson if writer == "ndjson" else _csv
    summary = import_events(db, write(tmp_path / f"b.{writer}", events), chunk_size=7)
    assert summary == ImportSummary(events=30, accepted=30)
    assert _report_of(api, imported) == _report_of(api, through_api)


def test_unreadable_lines_are_rejected_and_the_rest_goes_on(
    tmp_path: Path, db: Database, companies: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tally.usage.importer.MAX_LINE_BYTES", 400)
    acme = companies["acme"]
    path = tmp_path / "mixed.data"
    good = [simplejson.dumps(event(acme, f"u{n}")).encode() for n in range(3)]
    path.write_bytes(
        b"\xef\xbb\xbf"
        + good[0]
        + b"\n"
        + b'{"id": "'
        + b"x" * 900
        + b'"}\n'
        + good[1]
        + b"\n"
        + b"\xff\xfe not text\n"
        + good[2]
    )
    result = _import(db, path, "--format", "ndjson", "--chunk-size", "1")
    assert result.exit_code == 1
    assert "line 2: longer than 400 bytes" in result.stdout
    assert "line 4: not valid UTF-8" in result.stdout
    assert "accepted 3, duplicates 0, rejected 2" in result.stdout


# --- hostile lines: the right column, and nothing crashes the import ---------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        # Truncated: the column where the line stops (characters, from 1), not "column 1".
        ('{"id": "ev-1", "minutes": 1', "invalid JSON: the line ends early (Expecting ',' "),
        ('{"id": "ev-1", "minu', "invalid JSON: Unterminated string starting"),
        ('{"id": "ev-1", ', "invalid JSON: the line ends early (Expecting property name "),
        ('{"id": "é-1",, "x": 1}', "invalid JSON: Expecting property name "),
        ('{"a": 1} x', "invalid JSON: Extra data "),
    ],
)
def test_a_bad_json_line_names_the_column_where_it_goes_wrong(
    tmp_path: Path, db: Database, line: str, reason: str
) -> None:
    try:
        json.loads(line)
    except json.JSONDecodeError as exc:
        column = exc.pos + 1  # json's own position on the line alone
    path = tmp_path / "bad.ndjson"
    for ending in ("\n", "\r\n"):
        path.write_text(f"\n{line}{ending}", newline="")
        summary = import_events(db, path)
        (rejection,) = summary.rejections
        assert rejection.line == 2
        assert rejection.reason.startswith(reason), rejection.reason
        assert rejection.reason.endswith(f" at column {column}"), rejection.reason


def test_a_truncated_last_line_without_a_line_break(tmp_path: Path, db: Database) -> None:
    path = tmp_path / "cut.ndjson"
    path.write_text('{"id": "ev-1", "minutes": 1')
    (rejection,) = import_events(db, path).rejections
    assert rejection == Rejection(
        1, "invalid JSON: the line ends early (Expecting ',' delimiter) at column 28"
    )


HOSTILE_MINUTES = ["1e999999", "-1e999999", "1e-999999", "1E+999999999", "1e-999999999", "1e13"]


@pytest.mark.parametrize("writer", ["ndjson", "csv"])
def test_huge_and_tiny_exponents_reject_their_line_and_import_the_others(
    tmp_path: Path, db: Database, api: Api, companies: dict[str, str], writer: str
) -> None:
    acme = companies["acme"]
    if writer == "ndjson":
        lines = [
            simplejson.dumps(event(acme, f"h{n}")).replace('"minutes": 10', f'"minutes": {value}')
            for n, value in enumerate(HOSTILE_MINUTES)
        ]
        lines.insert(2, simplejson.dumps(event(acme, "ok-1")))
        lines.append(simplejson.dumps(event(acme, "ok-2", minutes=Decimal("-0"))))
        lines.append('{"id": "deep", "minutes": ' + "[" * 100_000 + "}")
        lines.append('{"id": "long", "minutes": ' + "9" * 5000 + "}")
        path = tmp_path / "hostile.ndjson"
        path.write_text("\n".join(lines) + "\n")
    else:
        header = ",".join(CSV_FIELDS)
        rows = [_csv_row(event(acme, f"h{n}"), value) for n, value in enumerate(HOSTILE_MINUTES)]
        rows.insert(2, _csv_row(event(acme, "ok-1"), "10"))
        rows.append(_csv_row(event(acme, "ok-2"), "-0"))
        path = tmp_path / "hostile.csv"
        path.write_text("\n".join([header, *rows]) + "\n")
    summary = import_events(db, path, chunk_size=3)
    assert summary.accepted == 2
    rejected = len(HOSTILE_MINUTES) + (2 if writer == "ndjson" else 0)
    assert summary.rejected == rejected
    for rejection in summary.rejections[: len(HOSTILE_MINUTES)]:
        assert rejection.reason.startswith("minutes: "), rejection
    stored = {item["costKey"]: item for item in _report_of(api, acme)["breakdownByCostKey"]}
    # 2 events stored before + ok-1 (10 minutes) + ok-2 (-0 is zero).
    assert stored["interview_minutes"]["events"] == 4


def _csv_row(line: dict[str, Any], minutes: str) -> str:
    return ",".join(
        minutes if name == "minutes" else _csv_cell(line.get(name, "")) for name in CSV_FIELDS
    )


def test_the_cli_survives_1e999999(tmp_path: Path, db: Database, companies: dict[str, str]) -> None:
    path = tmp_path / "e.ndjson"
    ok = simplejson.dumps(event(companies["acme"], "fine"))
    path.write_text(ok.replace('"fine"', '"bad"').replace(": 10", ": 1e999999") + "\n" + ok + "\n")
    result = _import(db, path)
    assert result.exit_code == 1, result.output
    assert "line 1: minutes: " in result.stdout
    assert "accepted 1, duplicates 0, rejected 1" in result.stdout
