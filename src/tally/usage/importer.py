"""Importing usage events from an NDJSON or CSV file: `tally events import`.

The file is read line by line, checked and priced as POST /usage/events
would (same validation, idempotency, pricing and messages), and stored
set-based by tally.usage.bulk, one chunk (50,000 events by default) per
transaction together with its changes to the totals (folded into the
running totals right after, tally.usage.fold), so memory stays flat whatever the file
size and a re-run finds everything already stored as duplicates. After each
chunk a checkpoint beside the file says where a rerun after a crash resumes
(tally.usage.checkpoint).

- Line numbers are physical lines of the file, from 1 (a CSV header is
  line 1). Blank lines are skipped. A CSV record is one line: no event
  field can hold a newline, so a quoted field may not span lines.
- Without strict, a bad line is rejected with its reason and the rest of
  its chunk is retried until it goes through. When an id repeats, the first
  occurrence (or the stored event) wins: a later line with the same payload
  is a duplicate, with another payload it is rejected.
- With strict, the first bad line stops the import and nothing of its chunk
  is stored; earlier chunks stay committed (run again without --strict, or
  fix the line and re-run: they come back as duplicates).
"""

import csv
import json
from bisect import insort
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from tally.core.instants import utcnow
from tally.db.engine import Database
from tally.settings import get_settings
from tally.usage import fold
from tally.usage.bulk import ChunkResult, ChunkWriter, Rejection
from tally.usage.checkpoint import Checkpoint, CheckpointFile
from tally.usage.schemas import EventIn

EXTENSIONS = {".ndjson": "ndjson", ".jsonl": "ndjson", ".csv": "csv"}
# The SPEC's event fields, in the wire schema's order.
CSV_FIELDS = tuple(info.alias or name for name, info in EventIn.model_fields.items())
CSV_REQUIRED = ("id", "companyId", "costKey", "occurredAt")
# Far above any event; keeps one hostile line from filling memory.
MAX_LINE_BYTES = 1024 * 1024
REPORTED = 50
DEFAULT_CHUNK = 50_000
MAX_CHUNK = 1_000_000
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
Pending = list[tuple[int, dict[str, Any]]]
Progress = Callable[[int], None]


class ImportFailed(Exception):
    """The file cannot be imported at all (format, CSV header, options)."""


class _BadLine(ValueError):
    """A line that is not an event; its message is the reason shown."""


Record = tuple[int, dict[str, Any] | Rejection | None, int]


@dataclass
class ImportSummary:
    """Counts of an import; `rejections` keeps the first REPORTED by line."""

    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    stopped: bool = False
    resumed_at: int | None = None  # the line a resumed import started at
    # Why progress could not be saved (the import went on, without a checkpoint).
    checkpoint_error: str | None = None

    def reject(self, rejection: Rejection) -> None:
        self.rejected += 1
        insort(self.rejections, rejection)
        del self.rejections[REPORTED:]


def resolve_format(path: Path, fmt: str | None) -> str:
    """The given format, else the one the file extension names."""
    resolved = fmt or EXTENSIONS.get(path.suffix.lower())
    if resolved not in ("ndjson", "csv"):
        raise ImportFailed(f"cannot tell the format of {path.name}; give --format ndjson|csv")
    return resolved


def _lines(
    handle: BinaryIO, number: int = 0, done: int = 0
) -> Iterator[tuple[int, str | _BadLine, int]]:
    """(line number, text or why it is unreadable, bytes read so far), after
    line `number` which ends at byte `done` (where the handle is)."""
    while line := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        done += len(line)
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = handle.readline(MAX_LINE_BYTES)
                done += len(line)
            yield number, _BadLine(f"longer than {MAX_LINE_BYTES} bytes"), done
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            yield number, _BadLine("not valid UTF-8"), done
            continue
        yield number, text.removeprefix("\ufeff") if number == 1 else text, done


def _no_constants(name: str) -> Any:
    raise _BadLine(f"invalid JSON: {name} is not valid JSON")


def _json_error(text: str, exc: json.JSONDecodeError) -> _BadLine:
    """The reason, with the column (characters from 1) on the line itself."""
    what = exc.msg.removesuffix(" at")  # "Invalid control character at"
    if exc.pos >= len(text):
        return _BadLine(f"invalid JSON: the line ends early ({what}) at column {exc.pos + 1}")
    return _BadLine(f"invalid JSON: {what} at column {exc.pos + 1}")


def _parse_ndjson(text: str) -> dict[str, Any]:
    # Without its line break, a truncated line is reported where it stops, not
    # at "line 2 column 1" of the text json sees.
    text = text.rstrip("\r\n")
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise _json_error(text, exc) from exc
    except _BadLine:
        raise
    except RecursionError as exc:
        raise _BadLine("invalid JSON: nested too deeply") from exc
    except ValueError as exc:  # Python refuses integers of more than 4,300 digits
        raise _BadLine("invalid JSON: a number with too many digits") from exc
    if not isinstance(value, dict):
        raise _BadLine("not a JSON object")
    return value


def _cell(name: str, cell: str) -> Any:
    if name == "minutes":
        try:
            return Decimal(cell)
        except InvalidOperation as exc:
            raise _BadLine(f"minutes: {cell!r} is not a number") from exc
    if name == "isTest":
        if cell.lower() not in _BOOLEANS:
            raise _BadLine(f"isTest: {cell!r} is not true, false, 1 or 0")
        return _BOOLEANS[cell.lower()]
    return cell


def _check_header(cells: list[str]) -> list[str]:
    unknown = sorted(set(cells) - set(CSV_FIELDS))
    missing = [name for name in CSV_REQUIRED if name not in cells]
    if unknown or missing or len(set(cells)) != len(cells):
        raise ImportFailed(
            f"bad CSV header (unknown: {unknown}, missing: {missing}, repeated columns?); "
            f"columns are {', '.join(CSV_FIELDS)}"
        )
    return cells


class _HeaderHolder(Protocol):
    header: list[str] | None


class _CsvParser:
    """Rows after the header, as event objects; empty cells are absent fields."""

    def __init__(self, holder: _HeaderHolder) -> None:
        self.header: list[str] | None = None
        self.holder = holder  # keeps the header for a checkpoint

    def __call__(self, text: str) -> dict[str, Any] | None:
        try:
            cells = next(csv.reader([text], strict=True))
        except csv.Error as exc:
            raise _BadLine(f"invalid CSV: {exc}") from exc
        if self.header is None:
            self.header = self.holder.header = _check_header(cells)
            return None
        if len(cells) != len(self.header):
            raise _BadLine(f"expected {len(self.header)} cells, found {len(cells)}")
        return {
            name: _cell(name, cell) for name, cell in zip(self.header, cells, strict=True) if cell
        }


Parser = Callable[[str], dict[str, Any] | None]


def _records(handle: BinaryIO, parse: Parser, line: int, offset: int) -> Iterator[Record]:
    """(line, event or rejection, bytes read) per line after `line`; None for skipped lines."""
    for number, text, done in _lines(handle, line, offset):
        if isinstance(text, _BadLine):
            yield number, Rejection(number, str(text)), done
        elif not text.strip():
            yield number, None, done
        else:
            try:
                yield number, parse(text), done
            except _BadLine as exc:
                yield number, Rejection(number, str(exc)), done


class _DryRun(Exception):
    """Raised inside a transaction to roll it back after a trial."""


@dataclass
class _Importer:
    """Sends chunks to the bulk writer, dropping (or stopping at) bad lines."""

    database: Database
    strict: bool
    saver: CheckpointFile | None
    summary: ImportSummary = field(default_factory=ImportSummary)
    header: list[str] | None = None
    witnesses: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.writer = ChunkWriter(get_settings().history_start)

    def attempt(self, pending: Pending, *, dry: bool = False) -> ChunkResult:
        """Store the lines in one transaction (rolled back when dry or strict and bad)."""
        result = ChunkResult()
        try:
            with self.database.transaction(write=True) as session:
                result = self.writer.store(session, pending, utcnow())
                if dry or (self.strict and result.rejections):
                    raise _DryRun
        except _DryRun:
            pass
        return result

    def flush(self, pending: Pending, line: int, offset: int | None) -> bool:
        """Store a chunk less its bad lines; False when strict mode stops here.

        Then save the checkpoint: resume after `line`, at byte `offset` (None
        for the last chunk: the import is over, nothing to resume).
        """
        if pending:
            result = self.attempt(pending)
            if self.strict and result.rejections:
                return self.stop(min(result.rejections))
            if result.accepted:
                # The chunk's changes into the running totals now, set-based
                # (tally.usage.fold), rather than left to a server's folder.
                self.database.write(fold.fold_all)
            self.summary.accepted += result.accepted
            self.summary.duplicates += result.duplicates
            for rejection in result.rejections:
                self.summary.reject(rejection)
            self.witnesses = result.witnesses or self.witnesses
        if self.saver is not None and offset is not None:
            try:
                self.saver.save(self._checkpoint(line, offset))
            except OSError as exc:  # a read-only folder must not stop the import itself
                self.summary.checkpoint_error = f"cannot write {self.saver.path}: {exc.strerror}"
                self.saver = None
        return True

    def _checkpoint(self, line: int, offset: int) -> Checkpoint:
        s = self.summary
        return Checkpoint(
            offset=offset,
            line=line,
            events=s.events,
            accepted=s.accepted,
            duplicates=s.duplicates,
            rejected=s.rejected,
            rejections=[(r.line, r.reason) for r in s.rejections],
            witnesses=self.witnesses,
            csv_header=self.header,
        )

    def resume(self, point: Checkpoint) -> None:
        self.summary = ImportSummary(
            events=point.events,
            accepted=point.accepted,
            duplicates=point.duplicates,
            rejected=point.rejected,
            rejections=[Rejection(line, reason) for line, reason in point.rejections],
            resumed_at=point.line + 1,
        )
        self.witnesses = point.witnesses

    def stop(self, rejection: Rejection) -> bool:
        self.summary.reject(rejection)
        self.summary.stopped = True
        return False

    def stop_before(self, pending: Pending, rejection: Rejection) -> None:
        """Strict: stop at an unparsable line, or at an earlier bad line of its chunk."""
        earlier = self.attempt(pending, dry=True).rejections if pending else []
        self.stop(min(earlier) if earlier else rejection)

    def run(self, records: Iterator[Record], chunk_size: int, progress: Progress) -> None:
        pending: Pending = []
        line = 0
        for line, record, done in records:
            if record is None:
                continue
            self.summary.events += 1
            if not isinstance(record, Rejection):
                pending.append((line, record))
            elif self.strict:
                self.stop_before(pending, record)
                return
            else:
                self.summary.reject(record)
            if len(pending) >= chunk_size:
                if not self.flush(pending, line, done):
                    return
                pending = []
                progress(done)
        self.flush(pending, line, None)


def _resume(
    database: Database, saver: CheckpointFile | None, importer: _Importer, fmt: str
) -> Checkpoint | None:
    if saver is None:
        return None
    with database.transaction(write=False) as session:
        point = saver.load(session)
    if point is None or (fmt == "csv") != (point.csv_header is not None):
        return None
    importer.resume(point)
    return point


def import_events(
    database: Database,
    path: Path | str,
    fmt: str | None = None,
    strict: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    on_progress: Progress | None = None,
    checkpoint: Path | None = None,
    resume: bool = True,
) -> ImportSummary:
    """Import a file of events; on_progress gets the bytes read after each chunk.

    With a checkpoint path, the progress is saved there after every chunk and
    a rerun resumes from it (see tally.usage.checkpoint); resume=False starts
    from line 1 whatever it holds.
    """
    path = Path(path)
    fmt = resolve_format(path, fmt)
    if not 1 <= chunk_size <= MAX_CHUNK:
        raise ImportFailed(f"the chunk size must be 1 to {MAX_CHUNK}")
    saver = CheckpointFile(checkpoint, path, database.url) if checkpoint is not None else None
    importer = _Importer(database, strict, saver)
    point = _resume(database, saver, importer, fmt) if resume else None
    progress = on_progress or (lambda done: None)
    with path.open("rb") as handle:
        parse = _parser(fmt, importer, point)
        start = (0, 0) if point is None else (point.line, point.offset)
        handle.seek(start[1])
        progress(start[1])
        importer.run(_records(handle, parse, *start), chunk_size, progress)
        progress(handle.tell())
    if importer.saver is not None:
        importer.saver.remove()
    return importer.summary


def _parser(fmt: str, importer: _Importer, point: Checkpoint | None) -> Parser:
    if fmt == "ndjson":
        return _parse_ndjson
    parser = _CsvParser(importer)
    if point is not None:
        parser.header = importer.header = point.csv_header
    return parser
