"""Fixtures: a receiver, and the API with private targets allowed and short backoff."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tally.app import create_app
from tally.db.engine import Database
from tally.settings import Settings
from tally.webhooks.worker import Deliverer
from tests.factories import Api
from tests.webhooks.receiver import Receiver, running_receiver

FAST = (0.0, 0.0, 0.0)


def hook_settings(db: Database, **overrides: object) -> Settings:
    fields: dict[str, object] = {
        "database_url": db.url,
        "webhook_allow_private": True,
        "webhook_worker": False,
        "webhook_backoff_seconds": FAST,
        "webhook_timeout_seconds": 5.0,
        "webhook_poll_seconds": 0.05,
    }
    return Settings(**(fields | overrides))  # type: ignore[arg-type]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def hooks(db: Database) -> Iterator[Api]:
    """The API of a server that allows private targets and runs no worker of its own."""
    app = create_app(hook_settings(db), database=db)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api.bootstrap(client, db)


@pytest.fixture
def deliverer(db: Database) -> Iterator[Deliverer]:
    """The worker's sending, driven by the test one pass at a time."""
    sending = Deliverer(db, hook_settings(db))
    yield sending
    sending.close()
