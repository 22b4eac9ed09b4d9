"""Billing periods of a plan: local midnight on the anchor day, in the plan's zone.

A monthly period runs from 00:00 local time on `anchor_day` of one month to
00:00 local time on `anchor_day` of the next; a yearly one from the anchor day
of `anchor_month` to the same day a year later. Anchor days stop at 28, so
every month has the day and February needs no special case. The period is
computed in local wall-clock time and converted to UTC at its two ends, so a
period that spans a daylight-saving change is an hour shorter or longer in UTC.
Pure: no database, no tally imports beyond the standard library.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

Period = Literal["month", "year"]


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open billing period [start, end) in UTC."""

    start: datetime
    end: datetime


def _local_midnight(zone: ZoneInfo, year: int, month: int, day: int) -> datetime:
    # A zone that skips midnight (a daylight-saving change at 00:00) maps the
    # missing wall time forward with fold=0, as zoneinfo does: the instant is
    # still unique and the same for every caller.
    return datetime(year, month, day, tzinfo=zone).astimezone(UTC)


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def current_window(
    period: Period, anchor_day: int, anchor_month: int, time_zone: str, now: datetime
) -> Window:
    """The period containing `now` (an aware instant)."""
    zone = ZoneInfo(time_zone)
    local = now.astimezone(zone)
    step = 1 if period == "month" else 12
    if period == "month":
        year, month = local.year, local.month
    else:
        year, month = local.year, anchor_month
    start = _local_midnight(zone, year, month, anchor_day)
    while start > now:
        year, month = _add_months(year, month, -step)
        start = _local_midnight(zone, year, month, anchor_day)
    end_year, end_month = _add_months(year, month, step)
    end = _local_midnight(zone, end_year, end_month, anchor_day)
    # now can lie past the end only in the hour a zone repeats; step forward.
    while end <= now:
        year, month = end_year, end_month
        start = end
        end_year, end_month = _add_months(year, month, step)
        end = _local_midnight(zone, end_year, end_month, anchor_day)
    return Window(start, end)
