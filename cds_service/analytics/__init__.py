"""Feedback analytics for the clinical lead: alert-fatigue measures per topic, indicator, knowledge
version and period, override reasons mapped to HL7's codes, and the dashboard page that shows them.

    config = load_analytics_config(cards_dir, knowledge)   # cards/analytics.yaml, checked at start-up
    hasher = PatientHasher.load(settings)                   # keyed hash of the patient id (the hook call)
    report = compute(rows, window, config)                  # measures.py: pure, no Flask, no SQL
    views.bp                                                # GET /dashboard, /dashboard/measures.{json,csv}

Only `views.py` imports Flask. The hook call uses `PatientHasher` and `suggestion_orders` to record, with
each card shown, what the measures need; the store reads the rows back (`feedback_store.analytics`).
"""

from __future__ import annotations

from .config import AnalyticsConfig, load_analytics_config
from .measures import Report, Window, compute
from .patient_key import PatientHasher
from .recording import suggestion_orders

__all__ = [
    "AnalyticsConfig",
    "PatientHasher",
    "Report",
    "Window",
    "compute",
    "load_analytics_config",
    "suggestion_orders",
]
