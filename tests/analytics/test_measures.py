"""The pure parts of the measures: percentiles, windows and periods, timestamps, reason codes, the first
outcome of a card, repeats; and cards/analytics.yaml's checks at start-up."""

from __future__ import annotations

import random
import shutil
import statistics
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from cds_service.analytics import Window, compute, load_analytics_config
from cds_service.analytics.dashboard import WindowError, window_from_query
from cds_service.analytics.measures import NONE, OTHER, UNMAPPED, classify_reason, parse_timestamp, percentile
from cds_service.config import DEFAULT_CARDS_DIR
from cds_service.evaluation import load_catalog
from cds_service.feedback_store import AnalyticsRows, OutcomeRow, ShownRow
from cds_service.knowledge import KnowledgeError

KNOWLEDGE = load_catalog(DEFAULT_CARDS_DIR)
CONFIG = load_analytics_config(DEFAULT_CARDS_DIR, KNOWLEDGE)
HL7 = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_percentile_is_type_7_as_statistics_inclusive() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([5, 10, 20, 30, 40, 60, 120], 0.9) == pytest.approx(84.0)
    rng = random.Random(17)
    for size in (2, 3, 10, 101):
        values = sorted(rng.uniform(0, 600) for _ in range(size))
        deciles = statistics.quantiles(values, n=10, method="inclusive")  # an independent type-7 oracle
        assert percentile(values, 0.9) == pytest.approx(deciles[8])
        assert percentile(values, 0.5) == pytest.approx(statistics.median(values))


def test_periods_by_day_and_iso_week() -> None:
    days = Window(at("2026-11-02T00:00:00"), at("2026-11-05T00:00:00"), "day")
    assert days.periods() == [date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)]
    weeks = Window(at("2026-12-30T00:00:00"), at("2027-01-12T00:00:00"), "week")  # across the year's end
    assert weeks.periods() == [date(2026, 12, 28), date(2027, 1, 4), date(2027, 1, 11)]
    assert weeks.period_start(at("2027-01-03T23:59:59")) == date(2026, 12, 28)  # a Sunday: the week before
    assert weeks.period_start(datetime(2027, 1, 4, 0, 30, tzinfo=UTC)) == date(2027, 1, 4)
    with pytest.raises(ValueError, match="period"):
        Window(at("2026-11-02T00:00:00"), at("2026-11-05T00:00:00"), "month")


def test_the_window_a_query_asks_for() -> None:
    now = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
    default = window_from_query(None, None, None, now)
    assert (default.since, default.until, default.period) == (at("2026-10-22T00:00:00"), at("2026-11-21T00:00:00"),
                                                              "day")
    days = window_from_query("2026-11-02", "2026-11-15", "week", now)
    assert (days.since, days.until) == (at("2026-11-02T00:00:00"), at("2026-11-16T00:00:00"))  # `until` inclusive
    exact = window_from_query("2026-11-02T08:00:00+01:00", "2026-11-02T10:00:00", None, now)
    assert (exact.since, exact.until) == (at("2026-11-02T07:00:00"), at("2026-11-02T10:00:00"))
    for since, until in (("2026-02-30", None), ("2026-11-10", "2026-11-09"), ("2025-01-01", "2026-11-01")):
        with pytest.raises(WindowError):
            window_from_query(since, until, None, now)


def test_outcome_timestamps() -> None:
    assert parse_timestamp("2021-12-11T10:05:31Z") == at("2021-12-11T10:05:31")
    assert parse_timestamp("2020-08-25T21:18:16.375Z") == at("2020-08-25T21:18:16.375000")
    assert parse_timestamp("2020-08-25T23:18:16+02:00") == at("2020-08-25T21:18:16")
    assert parse_timestamp("2020-08-25T21:18:16") == at("2020-08-25T21:18:16")  # no zone: UTC
    for bad in ("2020-12-11T00:00:00Z UTC", "yesterday", ""):
        assert parse_timestamp(bad) is None


def test_override_reason_codes() -> None:
    ours = CONFIG.our_system
    assert classify_reason("patient-declined", ours, CONFIG) == ("patient-declined", "patient-refuses")
    assert classify_reason("patient-declined", None, CONFIG) == ("patient-declined", "patient-refuses")
    assert classify_reason("patient-declined", "urn:other", CONFIG) == (OTHER, UNMAPPED)
    assert classify_reason("limited-time", HL7, CONFIG) == (OTHER, "limited-time")
    assert classify_reason("not-an-hl7-code", HL7, CONFIG) == (OTHER, UNMAPPED)
    assert classify_reason(None, ours, CONFIG) == (NONE, NONE)


def test_every_override_reason_of_the_cards_is_mapped() -> None:
    offered = {code for card in KNOWLEDGE.cards.values() for code, _ in card.override_reasons}
    assert set(CONFIG.mapping) == offered
    assert all(target in CONFIG.hl7_codes for target in CONFIG.mapping.values() if target)
    categories = {code.category for code in CONFIG.hl7_codes.values()}
    assert len(CONFIG.hl7_codes) == 35 and len(categories) == 6  # as in the HL7 code system (fb10ca7)


def _card(uuid: str, shown: str, patient: str | None = "p", topic: str = "dvt-likely") -> ShownRow:
    return ShownRow(uuid, topic, "critical", at(shown), "v", patient, {"s": "venous-duplex"})


def test_repeats_and_the_first_outcome() -> None:
    window = Window(at("2026-11-02T00:00:00"), at("2026-11-04T00:00:00"))
    cards = (_card("a", "2026-11-01T23:00:00"), _card("b", "2026-11-02T23:00:00"), _card("c", "2026-11-02T23:00:00",
             topic="sciatica"), _card("d", "2026-11-03T23:00:00.000001"), _card("e", "2026-11-03T12:00:00", None))
    outcomes = (OutcomeRow(1, "b", "overridden", "2026-11-02T23:05:00Z"),
                OutcomeRow(2, "b", "accepted", "2026-11-02T23:01:00Z", ("s",)),
                OutcomeRow(3, "d", "accepted", "garbage", ("zzz",)),
                OutcomeRow(4, "d", "overridden", "also garbage"))
    report = compute(AnalyticsRows(cards, outcomes), window, CONFIG)
    dvt = report.topics["dvt-likely"].scalars()
    # b repeats a (24 h), d does not repeat b (24 h + 1 µs), e has no hash; a is before the window
    assert (dvt["shown"], dvt["repeat_base"], dvt["repeats"]) == (3, 2, 1)
    # b: the acceptance at 23:01 came before the override at 23:05; d: both unreadable, the first sent
    assert (dvt["accepted"], dvt["overridden"], dvt["time_to_action_n"], dvt["time_to_action_excluded"]) == (2, 0, 1, 1)
    assert dvt["time_to_action_p50_s"] == 60.0
    assert dict(report.topics["dvt-likely"].accepted_by_order) == {"venous-duplex": 1, "(unknown)": 1}
    assert report.topics["sciatica"].scalars()["repeats"] == 0


@pytest.fixture()
def cards_copy(tmp_path: Path) -> Path:
    target = tmp_path / "cards"
    shutil.copytree(DEFAULT_CARDS_DIR, target, ignore=shutil.ignore_patterns("tests", "local"))
    return target


def _edit(cards: Path, change: dict[str, object]) -> None:
    path = cards / "analytics.yaml"
    document = yaml.safe_load(path.read_text())
    for key, value in change.items():
        section, _, name = key.partition(".")
        if name:
            if value is None and name in document[section]:
                del document[section][name]
            else:
                document[section][name] = value
        else:
            document[section] = value
    path.write_text(yaml.safe_dump(document))


@pytest.mark.parametrize(("change", "message"), [
    ({"override_reasons.patient-declined": None}, "without a mapping .* patient-declined"),
    ({"override_reasons.never-offered": "action-completed"}, "that no card offers: never-offered"),
    ({"override_reasons.patient-declined": "refused"}, "maps to 'refused', not an HL7 non-adherence code"),
    ({"repeat_window_hours": 0}, "repeat_window_hours"),
    ({"repeat_window_hours": "a day"}, "repeat_window_hours"),
])
def test_a_broken_analytics_file_stops_start_up(cards_copy: Path, change: dict[str, object], message: str) -> None:
    _edit(cards_copy, change)
    with pytest.raises(KnowledgeError, match=message):
        load_analytics_config(cards_copy, KNOWLEDGE)


def test_a_missing_analytics_file_stops_start_up(cards_copy: Path) -> None:
    (cards_copy / "analytics.yaml").unlink()
    with pytest.raises(KnowledgeError, match=r"analytics\.yaml: cannot read"):
        load_analytics_config(cards_copy, KNOWLEDGE)


def test_a_category_must_be_a_top_level_code(cards_copy: Path) -> None:
    path = cards_copy / "analytics.yaml"
    document = yaml.safe_load(path.read_text())
    document["hl7_non_adherence"]["codes"]["limited-time"]["category"] = "action-completed"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(KnowledgeError, match="category 'action-completed' is not a top-level code"):
        load_analytics_config(cards_copy, KNOWLEDGE)


def test_start_up_checks_it_even_with_the_dashboard_off(cards_copy: Path, make_app: object) -> None:
    _edit(cards_copy, {"override_reasons.patient-declined": None})
    with pytest.raises(KnowledgeError, match=r"analytics\.yaml"):
        make_app(cards_dir=str(cards_copy))  # type: ignore[operator]
    assert timedelta(hours=24) == CONFIG.repeat_window
