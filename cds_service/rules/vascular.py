"""Arterial causes: acute limb ischaemia (critical) and PAD with claudication (info)."""

from __future__ import annotations

from collections.abc import Mapping

from ..findings import Finding
from ..record.model import Fact, PatientRecord


def _abi(record: PatientRecord, t: Mapping[str, float]) -> Fact | None:
    latest = record.latest_quantity("ankle-brachial-index")
    if latest and latest.quantity and latest.quantity.value <= t["abi_pad_at_most"]:
        return latest
    return None


def acute_limb_ischaemia_rule(record: PatientRecord, t: Mapping[str, float]) -> Finding | None:
    """Coded acute arterial occlusion, or sudden pallor, coldness or pulselessness.

    Paraesthesia alone is common in sciatica; it counts only with PAD on record, to keep the
    critical card specific.
    """
    days = t["new_symptom_within_days"]
    coded = record.active_conditions("acute-limb-ischaemia", days)
    signs = record.findings("limb-ischaemia-signs", days, days)
    paraesthesia = record.findings("limb-paraesthesia", days, days)
    pad = record.active_conditions("pad") or ([a] if (a := _abi(record, t)) else [])
    if not (coded or signs or (paraesthesia and pad)):
        return None
    evidence = [f.evidence() for f in (*coded, *signs, *paraesthesia, *pad[:1])]
    return Finding(topic="acute-limb-ischemia", evidence=tuple(evidence),
                   thresholds=("new_symptom_within_days", "abi_pad_at_most"))


def pad_rule(record: PatientRecord, t: Mapping[str, float]) -> Finding | None:
    """PAD with intermittent claudication or an ABI at or below the threshold."""
    pad = record.active_conditions("pad")
    rest_pain = record.active_conditions("pad-rest-pain")
    abi = _abi(record, t)
    if not (pad or rest_pain or abi):
        return None
    evidence = [f.evidence() for f in (*rest_pain, *pad[:2])]
    if abi is not None:
        evidence.append(abi.evidence("Ankle-brachial index"))
    latest_abi = abi or record.latest_quantity("ankle-brachial-index")
    return Finding(
        topic="pad-claudication",
        evidence=tuple(evidence),
        variant="rest_pain" if rest_pain else None,
        values={"abi": str(latest_abi.quantity) if latest_abi and latest_abi.quantity else "not recorded"},
        thresholds=("abi_pad_at_most",),
    )
