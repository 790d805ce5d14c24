"""Tables of the store: cards shown, feedback received, token ids seen (replay protection).

This is the schema at the newest migration (`cds_service/migrations/versions/`): a test compares the
two on SQLite and PostgreSQL, so a table added here without its revision (or the reverse) fails.
Only `evaluation_snapshots` holds clinical data (the companion page's evidence, no name or identifier),
and only for CDS_COMPANION_TTL_HOURS. Elsewhere no patient data is stored: a shown card is its uuid, topic,
indicator, service, the hook instance (a UUID, or a hash of whatever else the client sent), the time, the
knowledge version, the order each of its suggestions creates, and a keyed hash of the patient (HMAC with a
secret from configuration, never the id itself: it only tells whether two cards were for the same
patient). Feedback keeps the clinician's comment until the retention purge clears it (`has_comment`
stays, for the counts).
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, DateTime, Integer, MetaData, String, Table, Text

metadata = MetaData()

cards_shown = Table(
    "cards_shown",
    metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("service_id", String(100), nullable=False),
    Column("topic", String(64), nullable=False, index=True),
    Column("indicator", String(16), nullable=False),
    Column("hook_instance", String(200), nullable=False),
    Column("shown_at", DateTime(timezone=True), nullable=False, index=True),
    # analytics (revision 0004): null on rows recorded before it, or without a patient-hash key
    Column("patient_key", String(64), nullable=True),
    Column("knowledge_version", String(64), nullable=True),
    Column("suggestions", JSON, nullable=True),  # {suggestion uuid: order key of cards/orders.yaml}
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_key", String(64), nullable=False, unique=True),
    Column("service_id", String(100), nullable=False),
    Column("card_uuid", String(200), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),
    Column("accepted_suggestions", Text, nullable=True),
    Column("override_code", String(200), nullable=True),
    Column("override_system", String(500), nullable=True),
    Column("user_comment", Text, nullable=True),
    Column("outcome_timestamp", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, index=True),
    Column("has_comment", Boolean, nullable=True),  # counted after the retention purge cleared the comment
)

# One row per accepted JWT (sha256 of iss + jti, so its length is bounded) until the token expires.
jwt_replay = Table(
    "jwt_replay",
    metadata,
    Column("token_key", String(64), primary_key=True),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

# What the companion page of one evaluation shows (cds_service/companion/snapshot.py), written with the
# cards shown and deleted once expired (CDS_COMPANION_TTL_HOURS, 24 h by default).
evaluation_snapshots = Table(
    "evaluation_snapshots",
    metadata,
    Column("snapshot_id", String(64), primary_key=True),
    Column("service_id", String(100), nullable=False),
    Column("hook_instance", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    Column("body", Text, nullable=False),
)
