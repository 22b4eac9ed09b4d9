"""The bulk import: its fast shape path, its checkpoints, and a real kill -9 mid-import."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import simplejson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tally.db.engine import Database
from tally.usage import bulk
from tally.usage.checkpoint import Checkpoint, CheckpointFile, default_path
from tally.usage.importer import CSV_FIELDS, ImportSummary, import_events
from tally.usage.ingest import Event, parse, shape_of
from tally.usage.schemas import EventIn
from tally.usage.shapes import ShapeChecker, Shaped
from tests.factories import Api, event
from tests.usage import reference

COMPANY = "6f1c2a4e-8b7d-4c3e-9a2f-1d5e7b9c0a13"
START, END = datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
TALLY = Path(sys.executable).with_name("tally")

# --- the fast shape path says what the wire schema says --------------------------------------

IDS = st.sampled_from(["a", "ev-1", ".", "..", ".x", "x" * 128, "x" * 129, "é", "a b", "", "a\n"])
INSTANTS = st.sampled_from(
    [
        "2026-02-10T10:00:00Z",
        "2026-02-10T10:00:00.123456+02:00",
        "2026-02-10T10:00:00.1234567Z",
        "2026-02-10T10:00:00",
        "2026-13-10T10:00:00Z",
        "2026-02-30T10:00:00Z",
        "2026-02-10T10:00:00+24:00",
        "2026-02-10 10:00:00Z",
        "2026-02-10T10:00:00Z\n",
        "1899-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+00:01",
        "2026-02-10",
    ]
)
NUMBERS = st.one_of(
    st.integers(-2, 10_001),
    st.decimals(allow_nan=False, allow_infinity=False, places=None),
    st.sampled_from(
        [
            *(Decimal("1.0000000"), Decimal("1E+3"), Decimal("-0"), Decimal("10000.000001")),
            *(Decimal("12.3456789"), Decimal("NaN"), Decimal("sNaN"), Decimal("1e999999")),
        ]
    ),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
)
COMPANIES = st.sampled_from(
    [COMPANY, COMPANY.upper(), COMPANY.replace("-", ""), "{" + COMPANY + "}", "not-a-uuid", 7]
)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "id": IDS,
    "companyId": COMPANIES,
    "costKey": st.sampled_from(["interview_minutes", "Bad", "a" * 65, "x1_", 3]),
    "occurredAt": INSTANTS,
    "minutes": NUMBERS,
    "interviewId": st.one_of(IDS, st.none()),
    "isTest": st.sampled_from([True, False, 0, "true", None]),
    "agentFocus": st.sampled_from(["SCREENING", "GENERIC", "screening", None, 1]),
    "extra": st.just(1),
}
REQUIRED = ("id", "companyId", "costKey", "occurredAt")


@st.composite
def raw_events(draw: st.DrawFn) -> dict[str, Any]:
    present = draw(st.sets(st.sampled_from(sorted(set(FIELDS) - set(REQUIRED)))))
    missing = draw(st.sets(st.sampled_from(REQUIRED), max_size=1))
    names = (set(REQUIRED) - missing) | present
    return {name: draw(FIELDS[name]) for name in sorted(names)}


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(raw_events(), min_size=1, max_size=4))
def test_the_fast_path_agrees_with_the_wire_schema_on_every_event(events: list[Any]) -> None:
    checker = ShapeChecker()  # shared across the list: its caches must not change answers
    for raw in events:
        try:  # the wire schema alone, without the fast path
            exact: Event | None = Event.from_input(EventIn.model_validate(raw))
        except ValidationError:
            exact = None
        fast = checker.fast(raw)
        checked = shape_of(raw)
        parsed = parse({"events": [raw]}).events[0]
        if exact is None:
            assert fast is None
            assert isinstance(checked, str)
            assert checked
            assert parsed is None
        else:
            expected = Shaped(*(getattr(exact, name) for name in Shaped._fields))
            assert fast in (None, expected)
            assert checked == expected
            assert parsed == exact


def test_the_plain_spelling_takes_the_fast_path() -> None:
    raw = event(COMPANY, "ev-1", minutes=Decimal("12.50"), interviewId="iv-1", isTest=False)
    fast = ShapeChecker().fast(raw | {"agentFocus": "SCREENING"})
    assert fast is not None
    assert (fast.minutes, fast.occurred_at) == (12_500_000, 1_770_717_600_000_000)


# --- duplicates, conflicts and prices inside one large chunk -----------------------------------


def test_repeats_inside_a_chunk_follow_their_first_line(
    tmp_path: Path, api: Api, db: Database
) -> None:
    credits = api.company("Credits Co", "credits")
    minutes = api.company("Minutes Co", "minutes")
    api.rule(costKey="interview_minutes", baseCost=1, effectiveFrom="2000-01-01T00:00:00Z")
    lines = [
        event(credits, "r1"),  # 1 accepted
        event(credits, "r1", minutes=Decimal("10.0")),  # 2 duplicate of line 1
        event(credits, "r1", minutes=11),  # 3 conflict with line 1
        event(credits, "p1", costKey="unpriced"),  # 4 no rule for a credits company
        event(credits, "p1", costKey="unpriced"),  # 5 same payload: the same rejection
        event(minutes, "m1", costKey="unpriced"),  # 6 a minutes company needs no rule
        event(minutes, "m1", costKey="unpriced"),  # 7 duplicate
    ]
    path = tmp_path / "repeats.ndjson"
    path.write_text("".join(simplejson.dumps(line, use_decimal=True) + "\n" for line in lines))
    summary = import_events(db, path)
    assert (summary.accepted, summary.duplicates, summary.rejected) == (2, 2, 3)
    assert [(r.line, r.reason) for r in summary.rejections] == [
        (3, bulk.CONFLICT),
        (4, "costKey: no pricing rule in force for unpriced"),
        (5, "costKey: no pricing rule in force for unpriced"),
    ]
    again = import_events(db, path)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 4, 3)


# --- resuming after a crash ----------------------------------------------------------------------


def _history(companies: list[str], count: int, seed: int) -> list[dict[str, Any]]:
    """Interviews over thirteen months, shuffled: late events everywhere."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    serial = 0
    while len(events) < count:
        serial += 1
        company = rng.choice(companies)
        is_test = rng.random() < 0.05
        at = START + timedelta(days=rng.randrange(395), seconds=rng.randrange(86400))
        focus = rng.choice(["SCREENING", "OUTREACH", None])
        for part in range(rng.randint(1, 4)):
            cost_key = "interview_minutes" if part < 2 else "sourcing_enrichment"
            minutes = Decimal(rng.randrange(0, 4000)) / 100 if part < 2 else 0
            events.append(
                {
                    "id": f"h-{serial}-{part}",
                    "companyId": company,
                    "costKey": cost_key,
                    "occurredAt": (at + timedelta(minutes=7 * part)).isoformat(),
                    "minutes": minutes,
                    "interviewId": f"hiv-{serial}",
                    "isTest": is_test,
                }
                | ({"agentFocus": focus} if focus else {})
            )
    rng.shuffle(events)
    return events[:count]


SINCE = "2000-01-01T00:00:00Z"
RULES: list[dict[str, Any]] = [
    {"costKey": "interview_minutes", "includedMinutes": 5, "costPerMinute": Decimal("0.25")},
    {"costKey": "interview_minutes", "agentFocus": "SCREENING", "baseCost": 3},
    {"costKey": "sourcing_enrichment", "baseCost": 1},
]


def _world(api: Api) -> tuple[list[reference.Company], list[dict[str, Any]]]:
    companies = [
        reference.Company(api.company(name, billing), name, billing)
        for name, billing in (
            ("Credits A", "credits"),
            ("Credits B", "credits"),
            ("Min", "minutes"),
        )
    ]
    rules = [body | {"effectiveFrom": SINCE} for body in RULES]
    for rule in rules:
        api.rule(**rule)
    return companies, rules


def _write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(simplejson.dumps(e, use_decimal=True) + "\n" for e in events))
    return path


def _check_totals(
    api: Api, companies: list[reference.Company], rules: list[dict[str, Any]], sent: list[Any]
) -> None:
    response = api.usage(start=START.isoformat(), end=END.isoformat())
    assert response.status_code == 200, response.text
    got = json.loads(response.text, parse_float=Decimal)["data"]
    assert got == reference.usage_data(sent, [], companies, START, END, rules)


def _write_csv(path: Path, events: list[dict[str, Any]]) -> Path:
    def cell(value: Any) -> str:
        return (
            "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        )

    rows = [",".join(CSV_FIELDS)]
    rows += [",".join(cell(e.get(name)) for name in CSV_FIELDS) for e in events]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("writer", ["ndjson", "csv"])
def test_an_import_that_died_resumes_from_its_checkpoint(
    tmp_path: Path, api: Api, db: Database, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    companies, rules = _world(api)
    sent = _history([c.id for c in companies], 600, seed=1)
    if writer == "csv":
        path = _write_csv(tmp_path / "history.csv", sent)
    else:
        path = _write(tmp_path / "history.ndjson", sent)
    first = 1 if writer == "ndjson" else 2  # the line of the first event
    checkpoint = default_path(path)
    real_store = bulk.ChunkWriter.store
    calls = []

    def dies_on_the_fourth_chunk(self: bulk.ChunkWriter, *args: Any) -> bulk.ChunkResult:
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_store(self, *args)

    monkeypatch.setattr(bulk.ChunkWriter, "store", dies_on_the_fourth_chunk)
    with pytest.raises(KeyboardInterrupt):
        import_events(db, path, chunk_size=100, checkpoint=checkpoint)
    monkeypatch.setattr(bulk.ChunkWriter, "store", real_store)
    saved = json.loads(checkpoint.read_text())["checkpoint"]
    assert (saved["line"], saved["accepted"]) == (first + 299, 300)
    summary = import_events(db, path, chunk_size=100, checkpoint=checkpoint)
    assert summary == ImportSummary(events=600, accepted=600, resumed_at=first + 300)
    assert not checkpoint.exists()
    _check_totals(api, companies, rules, sent)


def test_a_checkpoint_is_trusted_only_for_its_file_and_database(
    tmp_path: Path, api: Api, db: Database
) -> None:
    companies, _ = _world(api)
    sent = _history([c.id for c in companies], 200, seed=2)
    path = _write(tmp_path / "h.ndjson", sent)
    half = sum(len(simplejson.dumps(e, use_decimal=True)) + 1 for e in sent[:100])
    checkpoint = tmp_path / "elsewhere.json"
    assert import_events(db, path, chunk_size=50).accepted == 200
    # What a crash after line 100 would have left.
    crashed = Checkpoint(offset=half, line=100, events=100, accepted=100, witnesses=[sent[0]["id"]])
    CheckpointFile(checkpoint, path, db.url).save(crashed)
    resumed = import_events(db, path, chunk_size=50, checkpoint=checkpoint)
    assert resumed == ImportSummary(events=200, accepted=100, duplicates=100, resumed_at=101)
    # Its ids are not in this database (another one at the same URL, or emptied).
    CheckpointFile(checkpoint, path, db.url).save(replace(crashed, witnesses=["never-stored"]))
    restarted = import_events(db, path, chunk_size=50, checkpoint=checkpoint)
    assert restarted == ImportSummary(events=200, duplicates=200)
    # The file changed since.
    CheckpointFile(checkpoint, path, db.url).save(crashed)
    path.write_text(path.read_text() + "\n")
    restarted = import_events(db, path, chunk_size=50, checkpoint=checkpoint)
    assert restarted == ImportSummary(events=200, duplicates=200)
    # --restart ignores a good one.
    CheckpointFile(checkpoint, path, db.url).save(crashed)
    restarted = import_events(db, path, chunk_size=50, checkpoint=checkpoint, resume=False)
    assert restarted == ImportSummary(events=200, duplicates=200)
    assert not checkpoint.exists()


def test_a_checkpoint_that_cannot_be_written_does_not_stop_the_import(
    tmp_path: Path, api: Api, db: Database
) -> None:
    companies, _ = _world(api)
    path = _write(tmp_path / "h.ndjson", _history([c.id for c in companies], 100, seed=4))
    nowhere = tmp_path / "missing-folder" / "checkpoint.json"
    summary = import_events(db, path, chunk_size=30, checkpoint=nowhere)
    assert summary.accepted == 100
    assert summary.checkpoint_error is not None
    assert summary.checkpoint_error.startswith(f"cannot write {nowhere}")


# --- kill -9 of a real `tally events import` -----------------------------------------------------


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own console script
        [str(TALLY), *args], capture_output=True, text=True, timeout=600
    )


def test_kill_9_mid_import_then_rerun_finishes_the_job(
    tmp_path: Path, api: Api, db: Database
) -> None:
    companies, rules = _world(api)
    sent = _history([c.id for c in companies], 6000, seed=3)
    path = _write(tmp_path / "backfill.ndjson", sent)
    checkpoint = default_path(path)
    command = ["events", "import", str(path), "--chunk-size", "200", "--database-url", db.url]
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [str(TALLY), *command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 300
        while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert process.poll() is None, "the import ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert checkpoint.exists()
    rerun = _run(*command)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "resumed at line" in rerun.stdout
    accepted, duplicates = _counts(rerun.stdout)
    # A kill between a chunk's commit and its checkpoint brings that chunk back as duplicates.
    assert accepted + duplicates == len(sent)
    assert duplicates <= 200
    assert not checkpoint.exists()
    _check_totals(api, companies, rules, sent)
    verify = _run("verify", "--database-url", db.url)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    again = _run(*command)
    assert _counts(again.stdout) == (0, len(sent))


def _counts(output: str) -> tuple[int, int]:
    line = next(text for text in output.splitlines() if text.startswith("accepted "))
    parts = line.replace(",", "").split()
    return int(parts[1]), int(parts[3])
