"""`tally worker`: deliver webhooks in a process of its own."""

import logging
import signal
import threading

from rich.console import Console

from tally.cli_options import DatabaseOption
from tally.cli_options import database_url as database_url_of
from tally.db.engine import Database
from tally.db.migrate import upgrade
from tally.settings import get_settings
from tally.webhooks.worker import run_forever

err = Console(stderr=True)


def worker(database_url: DatabaseOption = None) -> None:
    """Deliver threshold webhooks until stopped (run with TALLY_WEBHOOK_WORKER=0 servers)."""
    settings = get_settings()
    url = database_url_of(database_url)
    upgrade(url)
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")
    database = Database(url)
    # A signal sets a flag the loop checks between passes: a KeyboardInterrupt
    # raised inside the driver or the pool could be swallowed there and leave
    # the process running.
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda _signum, _frame: stop.set())
    err.print("delivering webhooks; Ctrl-C stops")
    try:
        run_forever(database, settings, stop)
        err.print("stopped")
    finally:
        database.dispose()
