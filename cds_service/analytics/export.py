"""A report as the JSON of `GET /dashboard/measures.json` and the CSV of `.../measures.csv`.

Every name shown comes from the knowledge (topic, order and reason displays, HL7's displays); a code a
client sent that the knowledge does not know is only counted, as "(other)". No patient identifier or
free text is in the rows the measures read, so none can reach these exports.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from .config import AnalyticsConfig
from .measures import NONE, OTHER, Measures, Report, ordered_items

SCALARS = ("shown", "accepted", "overridden", "no_outcome", "acceptance_rate", "override_rate",
           "answered_override_rate", "time_to_action_n", "time_to_action_p50_s", "time_to_action_p90_s",
           "time_to_action_excluded", "repeat_base", "repeats", "repeat_rate", "feedback_items", "comments")
CSV_COLUMNS = ("grouping", "topic", "indicator", "knowledge_version", "period_start", *SCALARS,
               "accepted_by_order", "override_reasons", "override_reasons_hl7")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _reason_display(code: str, topic: str | None, config: AnalyticsConfig) -> str:
    if code == NONE:
        return "No reason given"
    if code == OTHER:
        return "A code this service does not offer"
    if topic is not None and (topic, code) in config.reason_displays:
        return config.reason_displays[(topic, code)]
    return next((d for (_, c), d in sorted(config.reason_displays.items()) if c == code), code)


def _hl7_entry(code: str, count: int, config: AnalyticsConfig) -> dict[str, Any]:
    known = config.hl7_codes.get(code)
    if known is None:
        display = "No reason given" if code == NONE else "No HL7 code corresponds"
        return {"code": code, "display": display, "count": count}
    return {"code": code, "system": config.hl7_system, "display": known.display, "category": known.category,
            "count": count}


def measures_json(measures: Measures, config: AnalyticsConfig, topic: str | None = None) -> dict[str, Any]:
    """One group's measures: the scalars, then the counts by order and by reason."""
    body = measures.scalars()
    body["accepted_by_order"] = [
        {"order": order, "display": config.order_displays.get(order, order), "count": count}
        for order, count in ordered_items(measures.accepted_by_order)]
    body["override_reasons"] = [
        {"code": code, "display": _reason_display(code, topic, config),
         **({"system": config.our_system, "hl7_code": config.hl7_of(code)} if code in config.our_codes else {}),
         "count": count}
        for code, count in ordered_items(measures.override_reasons)]
    body["override_reasons_hl7"] = [_hl7_entry(code, count, config)
                                    for code, count in ordered_items(measures.override_reasons_hl7)]
    return body


def report_json(report: Report, config: AnalyticsConfig, service_id: str, knowledge_version: str,
                generated_at: datetime) -> dict[str, Any]:
    """The whole report, as `measures.json` answers it."""
    window = report.window

    def topic_entry(topic: str, measures: Measures, **keys: Any) -> dict[str, Any]:
        return {"topic": topic, "display": config.topic_displays.get(topic, topic), **keys,
                **measures_json(measures, config, topic)}

    return {
        "service": service_id,
        "since": _iso(window.since),
        "until": _iso(window.until),
        "period": window.period,
        "generated_at": _iso(generated_at),
        "knowledge_version": knowledge_version,
        "repeat_window_hours": config.repeat_window.total_seconds() / 3600,
        "override_reason_system": config.our_system,
        "hl7_override_reason_system": config.hl7_system,
        "unmatched_feedback": report.unmatched_feedback,
        "totals": measures_json(report.totals, config),
        "topics": [topic_entry(topic, m) for topic, m in sorted(report.topics.items())],
        "indicators": [{"indicator": key, **measures_json(m, config)} for key, m in sorted(report.indicators.items())],
        "knowledge_versions": [{"knowledge_version": key, **measures_json(m, config)}
                               for key, m in sorted(report.versions.items())],
        "periods": [{"period_start": start.isoformat(), **measures_json(m, config)}
                    for start, m in sorted(report.periods.items())],
        "topic_periods": [topic_entry(topic, m, period_start=start.isoformat())
                          for (topic, start), m in sorted(report.topic_periods.items())],
        "topic_versions": [topic_entry(topic, m, knowledge_version=version)
                           for (topic, version), m in sorted(report.topic_versions.items())],
    }


def _counts(pairs: list[tuple[str, int]]) -> str:
    return ";".join(f"{key}={count}" for key, count in pairs)


def _csv_rows(report: Report) -> Iterator[dict[str, Any]]:
    def row(grouping: str, measures: Measures, **keys: Any) -> dict[str, Any]:
        return {"grouping": grouping, **keys, **measures.scalars(),
                "accepted_by_order": _counts(ordered_items(measures.accepted_by_order)),
                "override_reasons": _counts(ordered_items(measures.override_reasons)),
                "override_reasons_hl7": _counts(ordered_items(measures.override_reasons_hl7))}

    yield row("total", report.totals)
    for topic, m in sorted(report.topics.items()):
        yield row("topic", m, topic=topic)
    for indicator, m in sorted(report.indicators.items()):
        yield row("indicator", m, indicator=indicator)
    for version, m in sorted(report.versions.items()):
        yield row("knowledge_version", m, knowledge_version=version)
    for start, m in sorted(report.periods.items()):
        yield row("period", m, period_start=start.isoformat())
    for (topic, start), m in sorted(report.topic_periods.items()):
        yield row("topic_period", m, topic=topic, period_start=start.isoformat())
    for (topic, version), m in sorted(report.topic_versions.items()):
        yield row("topic_version", m, topic=topic, knowledge_version=version)


def report_csv(report: Report) -> str:
    """One row per group (`grouping` says which); counts by order and reason as `code=n;code=n`."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n", restval="")
    writer.writeheader()
    for row in _csv_rows(report):
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return out.getvalue()
