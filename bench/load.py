"""Build a benchmark database of a given size from a seed, through tally's services.

Partners, companies and prices go through the admin services; events through
tally.usage.ingest.ingest in batches of 1,000 (one transaction each, as the
API does); about 1% are then voided through tally.usage.ingest.void in
transactions of 1,000. A built database is cached with a JSON meta file and
reused by later runs with the same backend, size and seed.
"""

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import text, update

from bench import backends
from bench.backends import Place
from bench.config import REPO, Config
from bench.dataset import EventStream, World, build_world
from bench.measure import say
from tally.auth.scopes import KeyKind
from tally.companies import service as companies
from tally.companies.schemas import AtsIn, CompanyIn
from tally.core.instants import to_micros, utcnow
from tally.db.engine import Database
from tally.db.migrate import alembic_config, upgrade
from tally.pricing import service as pricing
from tally.pricing.rating import credits_of
from tally.pricing.schemas import RuleIn
from tally.pricing.service import rule_book
from tally.usage import ingest, repository, verify
from tally.usage.repository import events as events_table

BATCH = 1000


@dataclass
class Meta:
    """What a run needs to know about a cached database."""

    backend: str
    size: int
    seed: int
    now: str  # the anchor instant of the history, ISO 8601
    events: int  # rows in usage_events (the stream yields about `size`)
    voids: int
    ats_q3: str  # a partner of 50 companies (database id)
    ats_q4: str  # the partner of 500 companies (database id)
    company: str  # the company of Q1 and Q2
    schema: str
    source_digest: str
    build_seconds: float
    built_at: str

    @property
    def anchor(self) -> datetime:
        return datetime.fromisoformat(self.now)

    def principal_owner(self, kind: KeyKind, query: str) -> uuid.UUID:
        if kind is KeyKind.COMPANY:
            return uuid.UUID(self.company)
        return uuid.UUID(self.ats_q3 if query == "Q3" else self.ats_q4)


def schema_head(url: str) -> str:
    return str(ScriptDirectory.from_config(alembic_config(url)).get_current_head())


def source_digest() -> str:
    """A digest of tally's source: a cached database built by other code is suspect."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "src" / "tally").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _create_world(database: Database, world: World) -> dict[str, str]:
    """Partners, companies and rules; returns the dataset's partner ids -> database ids."""
    now = utcnow()
    ats_ids: dict[str, str] = {}
    with database.transaction(write=True) as session:
        for ats in world.ats:
            created = companies.create_ats(session, AtsIn(name=ats["name"]), now)
            ats_ids[ats["id"]] = str(created.id)
        for company in world.companies:
            body = CompanyIn.model_validate(
                company | {"atsIntegrationId": ats_ids[company["atsIntegrationId"]]}
            )
            companies.create_company(session, body, now)
        for rule in world.rules:
            pricing.create_rule(session, RuleIn.model_validate(rule), now)
    return ats_ids


def _send(database: Database, batch: list[dict[str, Any]]) -> None:
    with database.transaction(write=True) as session:
        ingest.ingest(session, {"events": batch}, utcnow())


def _send_bulk(database: Database, batch: list[dict[str, Any]]) -> None:
    """Validate and price as ingestion does, but store only the raw events.

    The aggregates are rebuilt once at the end by `tally verify --repair`'s
    code (see _rebuild), which is what makes a 10 M history quick to build.
    """
    parsed = ingest.parse({"events": batch})
    assert not parsed.errors.items, parsed.errors.items
    events = [event for event in parsed.events if event is not None]
    received = to_micros(utcnow())
    with database.transaction(write=True) as session:
        book = rule_book(session, sorted({event.cost_key for event in events}))
        priced = []
        for event in events:
            rule = book.rule_for(
                event.company_id, event.cost_key, event.agent_focus, event.occurred_at
            )
            credits = credits_of(rule, event.minutes) if rule is not None else None
            priced.append(
                ingest.PricedEvent.of(event, credits, rule.id if rule else None, received)
            )
        repository.insert_events(session, priced)


def _void_bulk(database: Database, ids: list[str]) -> None:
    voided_at = to_micros(utcnow())
    with database.transaction(write=True) as session:
        for offset in range(0, len(ids), BATCH):
            session.execute(
                update(events_table)
                .where(events_table.c.id.in_(ids[offset : offset + BATCH]))
                .values(voided_at=voided_at)
            )


def _rebuild(database: Database) -> None:
    """The aggregates from the raw events, then a check that nothing differs."""
    began = time.perf_counter()
    verify.run(database, fix=True)
    say(f"   aggregates rebuilt in {time.perf_counter() - began:,.0f}s")
    remaining = verify.run(database, fix=False)
    assert remaining == [], remaining[:5]


def _ingest_stream(
    database: Database, stream: EventStream, label: str, send: Callable[..., None]
) -> None:
    began = time.perf_counter()
    batch: list[dict[str, Any]] = []
    sent = 0
    step = max(BATCH, stream.total // 20 // BATCH * BATCH)
    for event in stream:
        batch.append(event)
        if len(batch) == BATCH:
            send(database, batch)
            sent += len(batch)
            batch = []
            if sent % step == 0:
                rate = sent / (time.perf_counter() - began)
                say(f"   {label}: {sent:,} events ({rate:,.0f}/s)")
    if batch:
        send(database, batch)


def _void(database: Database, ids: list[str]) -> None:
    for offset in range(0, len(ids), BATCH):
        with database.transaction(write=True) as session:
            for event_id in ids[offset : offset + BATCH]:
                ingest.void(session, event_id, utcnow())


def _finish(database: Database) -> int:
    """Statistics for PostgreSQL's planner (autovacuum would gather them); the row count."""
    with database.transaction(write=True) as session:
        if not database.is_sqlite:
            session.execute(text("ANALYZE"))
        return int(session.execute(text("SELECT COUNT(*) FROM usage_events")).scalar_one())


def build(config: Config, place: Place, size: int) -> Meta:
    """Create the database from scratch and write its meta file."""
    began = time.perf_counter()
    backends.create(place)
    upgrade(place.url)
    now = utcnow().replace(microsecond=0)
    world = build_world(config.seed, now)
    database = Database(place.url)
    try:
        ats_ids = _create_world(database, world)
        stream = EventStream(config.seed, world, size, now)
        label = f"{place.backend} {size:,}"
        if config.bulk:
            _ingest_stream(database, stream, label, _send_bulk)
            _void_bulk(database, stream.voids)
            _rebuild(database)
        else:
            _ingest_stream(database, stream, label, _send)
            _void(database, stream.voids)
        events = _finish(database)
    finally:
        database.dispose()
    backends.checkpoint(place)
    meta = Meta(
        backend=place.backend,
        size=size,
        seed=config.seed,
        now=now.isoformat(),
        events=events,
        voids=len(stream.voids),
        ats_q3=ats_ids[world.ats[1]["id"]],
        ats_q4=ats_ids[world.big_ats],
        company=world.companies[1]["id"],
        schema=schema_head(place.url),
        source_digest=source_digest(),
        build_seconds=round(time.perf_counter() - began, 1),
        built_at=utcnow().isoformat(),
    )
    path = backends.meta_path(config, place)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(meta), indent=2) + "\n")
    return meta


def _load_meta(path: Path) -> Meta | None:
    try:
        return Meta(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def obtain(config: Config, size: int, backend: str) -> tuple[Place, Meta, bool]:
    """The cached database if it is complete and of the current schema, else a new one.

    Returns the place, its meta and whether it was built by this call.
    """
    place = backends.cached(config, backend, size)
    meta = _load_meta(backends.meta_path(config, place))
    usable = (
        not config.rebuild
        and meta is not None
        and backends.exists(place)
        and meta.schema == schema_head(place.url)
    )
    if usable and meta is not None:
        if meta.source_digest != source_digest():
            say(f"   note: {place.name} was built by other tally code; --rebuild to refresh it")
        say(f"   reusing {place.name} ({meta.events:,} events, built {meta.built_at})")
        return place, meta, False
    say(f"   building {place.name} ({size:,} events, seed {config.seed})")
    return place, build(config, place, size), True
