"""A naive reference of GET /billing/usage's `data` (SPEC section 2), for tests.

Written from the SPEC alone and on purpose without anything from tally: plain
loops over the events exactly as they were sent, decimal.Decimal for every
quantity, no buckets and no SQL. Slow and obvious is the point; when it and
the service disagree, one of them misreads the SPEC.

Pricing (SPEC section 3) is redone here too, because a report shows the
credits stored at ingestion. The reference assumes every pricing rule it is
given existed before any event was ingested (the tests create rules first),
so "priced at ingestion" means "priced by these rules".
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

MILLIONTH = Decimal("0.000001")


@dataclass(frozen=True)
class Company:
    """A company in the caller's scope, with its current billing system."""

    id: str
    name: str
    billing_system: str


@dataclass(frozen=True)
class Event:
    """A usage event after the SPEC's defaults and normalisation."""

    id: str
    company_id: str
    cost_key: str
    occurred_at: datetime
    minutes: Decimal
    interview_id: str | None
    is_test: bool
    agent_focus: str | None

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> "Event":
        return cls(
            id=raw["id"],
            company_id=str(raw["companyId"]).lower(),
            cost_key=raw["costKey"],
            occurred_at=parse_instant(raw["occurredAt"]),
            minutes=number(raw.get("minutes", 0)),
            interview_id=raw.get("interviewId"),
            is_test=bool(raw.get("isTest", False)),
            agent_focus=raw.get("agentFocus"),
        )


@dataclass(frozen=True)
class Rule:
    """A pricing rule as created through POST /admin/pricing-rules."""

    cost_key: str
    agent_focus: str | None
    company_id: str | None
    base_cost: Decimal
    included_minutes: Decimal
    cost_per_minute: Decimal
    effective_from: datetime

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> "Rule":
        company = raw.get("companyId")
        return cls(
            cost_key=raw["costKey"],
            agent_focus=raw.get("agentFocus"),
            company_id=str(company).lower() if company is not None else None,
            base_cost=number(raw.get("baseCost", 0)),
            included_minutes=number(raw.get("includedMinutes", 0)),
            cost_per_minute=number(raw.get("costPerMinute", 0)),
            effective_from=parse_instant(raw["effectiveFrom"]),
        )

    @property
    def specificity(self) -> int:
        """0 = company and focus, 1 = company, 2 = platform and focus, 3 = platform."""
        return (0 if self.company_id is not None else 2) + (0 if self.agent_focus else 1)


def parse_instant(text: str) -> datetime:
    """ISO 8601 in UTC; a date alone is midnight UTC and a time without offset is UTC."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_instant(moment: datetime) -> str:
    """UTC with Z, and a fractional part only as long as it needs to be."""
    moment = moment.astimezone(UTC)
    text = moment.isoformat(timespec="microseconds").removesuffix("+00:00")
    seconds, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0")
    return f"{seconds}.{fraction}Z" if fraction else f"{seconds}Z"


def number(value: object) -> Decimal:
    """A JSON number as sent (int, Decimal, or a float as its shortest repr)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(f"not a number: {value!r}")
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def plain(value: Decimal | int) -> Decimal:
    """The same number without trailing zeros or an exponent: 245.50 -> 245.5, 1E+1 -> 10."""
    value = Decimal(value)
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def unique_events(sent: Iterable[Mapping[str, Any]]) -> dict[str, Event]:
    """The stored events: the first of each id; a re-sent id must be the same payload."""
    stored: dict[str, Event] = {}
    for raw in sent:
        event = Event.parse(raw)
        earlier = stored.setdefault(event.id, event)
        if earlier != event:
            raise ValueError(f"event {event.id} re-sent with another payload")
    return stored


def rule_in_force(event: Event, rules: Sequence[Rule]) -> Rule | None:
    """The most specific rule in force at occurredAt, and the latest effectiveFrom among those."""
    best: Rule | None = None
    for rule in rules:
        if rule.cost_key != event.cost_key or rule.effective_from > event.occurred_at:
            continue
        if rule.company_id is not None and rule.company_id != event.company_id:
            continue
        if rule.agent_focus is not None and rule.agent_focus != event.agent_focus:
            continue
        if best is None or _outranks(rule, best):
            best = rule
    return best


def _outranks(rule: Rule, best: Rule) -> bool:
    """Same level and same effectiveFrom: rules come in creation order, the later one wins
    (the SPEC is silent on this tie; the property tests never generate it)."""
    if rule.specificity != best.specificity:
        return rule.specificity < best.specificity
    return rule.effective_from >= best.effective_from


def credits_of(event: Event, rules: Sequence[Rule]) -> Decimal | None:
    """The credits stored with an event, or None when no rule priced it."""
    rule = rule_in_force(event, rules)
    if rule is None:
        return None
    with localcontext() as context:
        context.prec = 60  # far beyond 10**4 minutes times 10**9 per minute, six places each
        billable = max(Decimal(0), event.minutes - rule.included_minutes)
        exact = rule.base_cost + billable * rule.cost_per_minute
        return exact.quantize(MILLIONTH, rounding=ROUND_HALF_EVEN)


def counts(event: Event, voided: set[str]) -> bool:
    """Counted somewhere: not a test and not voided (the window is checked apart)."""
    return not event.is_test and event.id not in voided


def first_counted(events: Iterable[Event], voided: set[str]) -> dict[str, tuple[datetime, str]]:
    """Each interview's earliest counted event over all time: (instant, company id)."""
    first: dict[str, tuple[datetime, str]] = {}
    for event in events:
        if event.interview_id is None or not counts(event, voided):
            continue
        known = first.get(event.interview_id)
        if known is None or event.occurred_at < known[0]:
            first[event.interview_id] = (event.occurred_at, event.company_id)
    return first


def _amount_field(billing_system: str) -> str:
    return "minutesUsed" if billing_system == "minutes" else "creditsUsed"


def _total_field(billing_system: str) -> str:
    return "totalMinutesUsed" if billing_system == "minutes" else "totalCreditsUsed"


def _company_entry(
    company: Company,
    events: Sequence[Event],
    interviews: dict[str, tuple[datetime, str]],
    rules: Sequence[Rule],
    window: tuple[datetime, datetime],
) -> dict[str, Any]:
    start, end = window
    per_key: dict[str, tuple[int, Decimal]] = {}
    for event in events:
        if event.company_id != company.id:
            continue
        if company.billing_system == "minutes":
            amount = event.minutes
        else:
            amount = credits_of(event, rules) or Decimal(0)
        count, total = per_key.get(event.cost_key, (0, Decimal(0)))
        per_key[event.cost_key] = (count + 1, total + amount)
    unit = _amount_field(company.billing_system)
    return {
        "companyId": company.id,
        "companyName": company.name,
        "billingSystem": company.billing_system,
        _total_field(company.billing_system): plain(sum(a for _, a in per_key.values())),
        "totalInterviews": sum(
            1 for at, owner in interviews.values() if owner == company.id and start <= at < end
        ),
        "breakdownByCostKey": [
            {"costKey": key, "events": per_key[key][0], unit: plain(per_key[key][1])}
            for key in sorted(per_key)
        ],
    }


def _top_level(entries: list[dict[str, Any]]) -> dict[str, Any]:
    units = [u for u in ("minutes", "credits") if any(e["billingSystem"] == u for e in entries)]
    top: dict[str, Any] = {_total_field(u): Decimal(0) for u in units}
    merged: dict[str, dict[str, Any]] = {}
    for entry in entries:
        unit = entry["billingSystem"]
        top[_total_field(unit)] += entry[_total_field(unit)]
        for item in entry["breakdownByCostKey"]:
            into = merged.setdefault(
                item["costKey"], {"events": 0} | {_amount_field(u): Decimal(0) for u in units}
            )
            into["events"] += item["events"]
            into[_amount_field(unit)] += item[_amount_field(unit)]
    result: dict[str, Any] = {field: plain(value) for field, value in top.items()}
    result["totalInterviews"] = sum(entry["totalInterviews"] for entry in entries)
    result["breakdownByCostKey"] = [
        {"costKey": key}
        | {f: (plain(v) if isinstance(v, Decimal) else v) for f, v in merged[key].items()}
        for key in sorted(merged)
    ]
    return result


def usage_data(
    sent: Iterable[Mapping[str, Any]],
    voided: Iterable[str],
    companies: Iterable[Company],
    start: datetime,
    end: datetime,
    rules: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The `data` of GET /billing/usage over [start, end) for these companies.

    `sent` is every event as sent, duplicates included; `voided` the ids
    voided; `companies` the companies in the caller's scope; `rules` every
    pricing rule, in creation order.
    """
    stored = list(unique_events(sent).values())
    void_set = set(voided)
    interviews = first_counted(stored, void_set)
    in_window = [e for e in stored if counts(e, void_set) and start <= e.occurred_at < end]
    parsed_rules = [Rule.parse(rule) for rule in rules]
    ordered = sorted(companies, key=lambda company: (company.name, company.id))
    entries = [
        _company_entry(company, in_window, interviews, parsed_rules, (start, end))
        for company in ordered
    ]
    return {
        "period": {"start": format_instant(start), "end": format_instant(end)},
        "companies": entries,
        **_top_level(entries),
    }


# --- SPEC section 6: local-calendar buckets, by brute force ---------------------------------
#
# Independent of tally.core.calendar on purpose: instead of stepping from one
# local boundary to the next, this walks a 15-minute UTC grid (every offset
# and transition of the zones tested lies on it) and cuts wherever the local
# bucket changes, or, for hours, wherever the wall clock reads :00.

GRID = timedelta(minutes=15)
MICRO = timedelta(microseconds=1)


def _local_key(moment: datetime, zone: ZoneInfo, granularity: str) -> tuple[int, ...]:
    local = moment.astimezone(zone)
    if granularity == "hour":
        return (local.year, local.month, local.day, local.hour)
    if granularity == "day":
        return (local.year, local.month, local.day)
    if granularity == "week":
        year, week, _ = local.date().isocalendar()
        return (year, week)
    return (local.year, local.month)


def _is_boundary(moment: datetime, zone: ZoneInfo, granularity: str) -> bool:
    if _local_key(moment - MICRO, zone, granularity) != _local_key(moment, zone, granularity):
        return True
    local = moment.astimezone(zone)
    return granularity == "hour" and (local.minute, local.second) == (0, 0)


def local_buckets(
    start: datetime, end: datetime, granularity: str, zone_name: str
) -> list[tuple[datetime, datetime]]:
    """The buckets of [start, end) on the zone's calendar, clipped, in order."""
    zone = ZoneInfo(zone_name)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    moment = epoch + ((start - epoch) // GRID + 1) * GRID  # first grid point after start
    cuts = [start]
    while moment < end:
        if _is_boundary(moment, zone, granularity):
            cuts.append(moment)
        moment += GRID
    cuts.append(end)
    return list(pairwise(cuts))


def series_data(
    sent: Sequence[Mapping[str, Any]],
    voided: Iterable[str],
    companies: Iterable[Company],
    window: tuple[datetime, datetime],
    granularity: str,
    zone_name: str,
    rules: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The `data` of GET /billing/usage/series: usage_data for each bucket, regrouped."""
    scope = list(companies)
    void_set = set(voided)
    reports = [
        (low, high, usage_data(sent, void_set, scope, low, high, rules))
        for low, high in local_buckets(*window, granularity, zone_name)
    ]
    per_company: list[dict[str, Any]] = []
    for position, company in enumerate(sorted(scope, key=lambda c: (c.name, c.id))):
        entries = []
        for low, high, report in reports:
            entry = dict(report["companies"][position])
            for name in ("companyId", "companyName", "billingSystem"):
                entry.pop(name)
            entries.append({"start": format_instant(low), "end": format_instant(high)} | entry)
        per_company.append(
            {
                "companyId": company.id,
                "companyName": company.name,
                "billingSystem": company.billing_system,
                "buckets": entries,
            }
        )
    top = []
    for low, high, report in reports:
        rest = {k: v for k, v in report.items() if k not in ("period", "companies")}
        top.append({"start": format_instant(low), "end": format_instant(high)} | rest)
    return {
        "period": {"start": format_instant(window[0]), "end": format_instant(window[1])},
        "granularity": granularity,
        "timeZone": zone_name,
        "companies": per_company,
        "buckets": top,
    }
