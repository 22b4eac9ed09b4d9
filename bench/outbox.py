"""Ingestion rate with plans and webhook endpoints configured, against without.

In-process (the ingestion service, one transaction per 1,000-event batch, as
the API commits them), on a fresh database: SQLite by default, or the
PostgreSQL server given with --postgres (a scratch database is created and
dropped). Companies get a history first; then rounds alternate batches
without plans and with a plan for every company plus three webhook endpoints
(for all, for one company, for one ATS), so both see the same database size.
Allowances are large enough that batches rarely cross a threshold: what is
measured is the check every batch pays (issue 7 target: >= 90 %). Each round
starts with one untimed batch per mode: after plans are put, that batch
counts each company's period from the report (tally.webhooks.outbox), once;
its time is printed apart.

    .venv/bin/python -m bench.outbox [--postgres postgresql://postgres@127.0.0.1/postgres]
"""

import argparse
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import delete
from sqlalchemy.engine import make_url

from tally.companies import service as companies
from tally.companies.schemas import AtsIn, CompanyIn
from tally.core.instants import format_instant, utcnow
from tally.db.engine import Database
from tally.db.migrate import upgrade
from tally.plans import service as plans
from tally.plans.models import Plan
from tally.plans.schemas import PlanIn
from tally.usage import ingest
from tally.webhooks import service as webhooks
from tally.webhooks.schemas import EndpointIn

BATCH = 1000


@contextmanager
def scratch(postgres: str | None) -> Iterator[str]:
    if postgres is None:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/outbox.db"
        return
    name = f"tally_bench_outbox_{uuid.uuid4().hex[:8]}"
    admin_url = make_url(postgres).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield make_url(postgres).set(database=name).render_as_string(False)
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def batches(
    rng: random.Random, ids: list[uuid.UUID], count: int, prefix: str
) -> list[dict[str, Any]]:
    now = utcnow()
    bodies = []
    for number in range(count):
        events = [
            {
                "id": f"{prefix}-{number}-{index}",
                "companyId": str(rng.choice(ids)),
                "costKey": rng.choice(("interview_minutes", "sourcing_enrichment")),
                # Mostly the current period of a plan anchored on the 1st.
                "occurredAt": format_instant(now - timedelta(seconds=rng.randrange(1, 86400 * 3))),
                "minutes": Decimal(rng.randrange(1, 60_000)) / 1000,
            }
            for index in range(BATCH)
        ]
        bodies.append({"events": events})
    return bodies


def setup(database: Database, companies_count: int) -> tuple[list[uuid.UUID], uuid.UUID]:
    now = utcnow()
    with database.transaction(write=True) as session:
        ats = companies.create_ats(session, AtsIn(name="Bench ATS"), now).id
        ids = [
            companies.create_company(
                session,
                CompanyIn.model_validate(
                    {
                        "name": f"Company {n:03d}",
                        "billingSystem": "minutes",
                        "atsIntegrationId": ats if n % 2 else None,
                    }
                ),
                now,
            ).id
            for n in range(companies_count)
        ]
    return ids, ats


def configure(database: Database, ids: list[uuid.UUID], ats: uuid.UUID, on: bool) -> None:
    now = utcnow()
    with database.transaction(write=True) as session:
        session.execute(delete(Plan))
        if not on:
            return
        body = PlanIn.parse({"allowance": 10**9, "period": "month", "thresholds": [50, 80, 100]})
        for company_id in ids:
            plans.put_plan(session, company_id, body, now)
        for filters in ({}, {"companyId": str(ids[0])}, {"atsIntegrationId": str(ats)}):
            endpoint = EndpointIn.model_validate({"url": "https://8.8.8.8/bench"} | filters)
            webhooks.create_endpoint(session, endpoint, allow_private=False, now=now)


def ingest_all(database: Database, bodies: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for body in bodies:
        with database.transaction(write=True) as session:
            ingest.ingest(session, body, utcnow())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--companies", type=int, default=50)
    parser.add_argument("--history", type=int, default=20, help="batches of history first")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--per-round", type=int, default=5, help="batches per round and mode")
    args = parser.parse_args()
    rng = random.Random(7)
    with scratch(args.postgres) as url:
        upgrade(url)
        database = Database(url)
        try:
            ids, ats = setup(database, args.companies)
            ingest_all(database, batches(rng, ids, args.history, "history"))
            seconds = {False: 0.0, True: 0.0}
            first = {False: 0.0, True: 0.0}
            for number in range(args.rounds):
                for on in (False, True):
                    configure(database, ids, ats, on)
                    # A plan put or replaced has its period's usage counted from the
                    # report once, by its first batch (plan_usage); then each batch
                    # adds its own events. That first batch is timed apart.
                    warm = batches(rng, ids, 1, f"w{number}-{int(on)}")
                    first[on] += ingest_all(database, warm)
                    bodies = batches(rng, ids, args.per_round, f"r{number}-{int(on)}")
                    seconds[on] += ingest_all(database, bodies)
        finally:
            database.dispose()
    events = args.rounds * args.per_round * BATCH
    without, with_plans = events / seconds[False], events / seconds[True]
    backend = "postgresql" if args.postgres else "sqlite"
    print(
        f"{backend}: {args.companies} companies, {events:,} events per mode in batches of {BATCH}"
    )
    print(f"  without plans:                  {without:,.0f} events/s")
    print(f"  with plans and 3 endpoints:     {with_plans:,.0f} events/s")
    print(f"  ratio: {with_plans / without:.1%} (target >= 90 %)")
    print(
        f"  first batch after the plans are put: {first[True] / args.rounds * 1000:,.0f} ms"
        f" (without plans: {first[False] / args.rounds * 1000:,.0f} ms)"
    )


if __name__ == "__main__":
    main()
