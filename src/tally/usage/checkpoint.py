"""Where an interrupted import resumes: a small JSON file beside the imported one.

After each committed chunk the importer writes (atomically: a temporary file
renamed over the old one) the byte offset and line number after the chunk,
the counts so far and a few ids the chunk stored. A rerun of the same
command (same file, same database) seeks to that offset instead of reading
the file again. The file is deleted when the import finishes.

A checkpoint is only trusted when the file has the same size, modification
time and first 64 KiB, the database URL is the same, and the ids it names
are stored in that database; otherwise the import starts from line 1, which
idempotency makes correct (everything already stored is a duplicate), only
slower. A crash between a commit and the checkpoint's write loses nothing
either: that chunk comes back as duplicates.
"""

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tally.usage import repository

VERSION = 1
_HEAD = 64 * 1024


def default_path(source: Path) -> Path:
    return source.with_name(source.name + ".tally-import")


def _fingerprint(source: Path, database_url: str) -> dict[str, Any]:
    status = source.stat()
    with source.open("rb") as handle:
        head = hashlib.sha256(handle.read(_HEAD)).hexdigest()
    url = hashlib.sha256(database_url.encode()).hexdigest()
    return {"size": status.st_size, "mtime_ns": status.st_mtime_ns, "head": head, "database": url}


@dataclass
class Checkpoint:
    """How far an import got: resume reading at `offset` (line `line` + 1)."""

    offset: int = 0
    line: int = 0
    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[tuple[int, str]] = field(default_factory=list)
    witnesses: list[str] = field(default_factory=list)
    csv_header: list[str] | None = None


class CheckpointFile:
    """The checkpoint of one import of `source` into one database."""

    def __init__(self, path: Path, source: Path, database_url: str) -> None:
        self.path = path
        self.fingerprint = _fingerprint(source, database_url)

    def load(self, session: Session) -> Checkpoint | None:
        """The saved checkpoint when it belongs to this file and database, else None."""
        try:
            saved = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or saved.get("version") != VERSION:
            return None
        if saved.get("fingerprint") != self.fingerprint:
            return None
        try:
            point = Checkpoint(**saved["checkpoint"])
        except (TypeError, KeyError):
            return None
        point.rejections = [(int(line), str(reason)) for line, reason in point.rejections]
        found = repository.stored_events(session, sorted(set(point.witnesses)))
        if len(found) != len(set(point.witnesses)):
            return None  # another database at the same URL, or it was emptied
        return point

    def save(self, point: Checkpoint) -> None:
        """Replace the checkpoint atomically (a crash leaves the old or the new one)."""
        body = {"version": VERSION, "fingerprint": self.fingerprint, "checkpoint": asdict(point)}
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(body))
        os.replace(partial, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
