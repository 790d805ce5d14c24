"""Command line: `knee-cds serve`, `knee-cds evaluate FILE` (offline evaluation for review), the test
kit's `knee-cds test` and `knee-cds diff` (cds_service/casekit), and `knee-cds db
upgrade|current|downgrade|revision|purge` (schema migrations of the store, the retention purge)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .casekit.cli import add_parsers as add_casekit_parsers
from .config import ConfigError, load_settings
from .errors import PatientMismatch
from .evaluation import Evaluation, Evaluator, load_catalog
from .fhir_client import bundle_resources
from .knowledge import KnowledgeError
from .render import CardSource, evidence_of

if TYPE_CHECKING:
    from .config import Settings
    from .feedback_store import StoreOptions


def _resources_and_patient(document: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """Resources and patient id from a CDS Hooks request file or a FHIR Bundle."""
    if document.get("resourceType") == "Bundle":
        resources = bundle_resources(document)
        patient = next((r for r in resources if r.get("resourceType") == "Patient"), None)
        if patient is None:
            raise ValueError("the Bundle holds no Patient")
        return resources, str(patient.get("id"))
    if "hook" in document and isinstance(document.get("context"), dict):
        resources = []
        for value in (document.get("prefetch") or {}).values():
            if isinstance(value, dict) and value.get("resourceType") == "Bundle":
                resources += bundle_resources(value)
            elif isinstance(value, dict) and value.get("resourceType") != "OperationOutcome":
                resources.append(value)
        return resources, str(document["context"].get("patientId"))
    raise ValueError("not a CDS Hooks request or a FHIR Bundle")


def _print_text(evaluation: Evaluation) -> None:
    record = evaluation.record
    print(f"Patient {record.patient_id}, age {record.age_years}, evaluated at {record.now:%Y-%m-%d %H:%M} UTC")
    if not evaluation.cards:
        print("No cards: evaluated, nothing found.")
    for card, finding in zip(evaluation.cards, evaluation.findings, strict=True):
        topic = card.source.topic.code if card.source.topic else "?"
        print(f"\n[{card.indicator.upper()}] {topic}: {card.summary}")
        print("  " + (card.detail or "").replace("\n", "\n  "))
        print("  Evidence (as on the companion page):")
        for line in evidence_of(finding):
            print(f"    - {line.markdown()}")
        for suggestion in card.suggestions or []:
            print(f"  → suggestion: {suggestion.label}")
    if record.unread:
        print(f"\nNot read: {', '.join(map(str, record.unread))}")


def _evaluate(args: argparse.Namespace) -> int:
    settings = load_settings({"cards_dir": args.cards} if args.cards else None)
    evaluator = Evaluator(load_catalog(settings.cards_dir),
                          CardSource(settings.source_label, settings.source_url or None),
                          settings.max_json_depth)
    document = orjson.loads(Path(args.file).read_bytes())
    if not isinstance(document, dict):
        raise ValueError("the file must hold a JSON object")
    resources, patient_id = _resources_and_patient(document)
    now = datetime.fromisoformat(args.as_of).replace(tzinfo=UTC) if args.as_of else None
    context = document.get("context") if isinstance(document.get("context"), dict) else {}
    encounter = context.get("encounterId") if isinstance(context.get("encounterId"), str) else None
    evaluation = evaluator.evaluate(resources, patient_id, now, encounter_id=encounter)
    if args.json:
        sys.stdout.write(orjson.dumps(evaluation.response(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print_text(evaluation)
    return 0


def _serve(args: argparse.Namespace) -> int:
    os.environ.setdefault("CDS_AUTH", "off")
    argv = ["gunicorn", "--config", str(args.config), "--bind", f"{args.host}:{args.port}",
            "cds_service.wsgi:app"]
    os.execvp(argv[0], argv)  # replaces this process; gunicorn takes over signals


def _db(args: argparse.Namespace) -> int:
    """Schema migrations on CDS_DATABASE_URL (with CDS_DATABASE_PASSWORD_FILE and its TLS options)."""
    from sqlalchemy.exc import SQLAlchemyError

    from .feedback_store import SchemaError, StoreConfigError, make_engine, migrate
    from .runtime import store_options

    settings = load_settings({"database_url": args.url} if args.url else None)
    options = store_options(settings)
    try:
        engine = make_engine(settings.database_url, options)
    except StoreConfigError as exc:
        raise ConfigError(str(exc)) from None
    try:
        if args.db_command == "current":
            with engine.connect() as connection:
                current = migrate.current_revision(connection)
                state = migrate.check(connection)
            print(f"current: {current or '(none)'}  head: {migrate.head_revision()}  ({state})")
        elif args.db_command == "upgrade":
            before, after = migrate.upgrade(engine, args.revision)
            print(f"upgraded: {before or '(none)'} -> {after}")
        elif args.db_command == "downgrade":
            before, after = migrate.downgrade(engine, "-1")
            print(f"downgraded: {before} -> {after or '(none)'}")
        elif args.db_command == "purge":
            return _purge(settings, options)
        else:
            return _new_revision(args)
    except SchemaError as exc:
        print(f"knee-cds: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(f"knee-cds: database error: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def _purge(settings: Settings, options: StoreOptions) -> int:
    """The retention purge once, now (CDS_RETENTION_DAYS, CDS_COMMENT_RETENTION_DAYS): for a cron job, or
    before a backup leaves the building."""
    from .feedback_store import FeedbackStore, StoreUnavailableError

    store = FeedbackStore(settings.database_url, options, migrate_schema=False)
    try:
        done = store.purge(settings.retention_days, settings.comment_retention_days)
    except StoreUnavailableError as exc:
        print(f"knee-cds: purge not done: store {exc.reason}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"purged (retention {settings.retention_days} days, comments {settings.comment_retention_days} days): "
          + ", ".join(f"{step} {count}" for step, count in done.items()))
    return 0


def _new_revision(args: argparse.Namespace) -> int:
    """A new revision file under cds_service/migrations/versions, autogenerated from schema.py
    against a scratch SQLite database upgraded to the current head."""
    import tempfile

    from alembic import command
    from sqlalchemy import create_engine

    from .feedback_store import migrate

    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{scratch}/scratch.sqlite3")
        migrate.upgrade(engine)
        with engine.connect() as connection:
            number = len(list(migrate.script().walk_revisions())) + 1
            script = command.revision(migrate.alembic_config(connection), message=args.message,
                                      autogenerate=True, rev_id=f"{number:04d}")
        engine.dispose()
    path = script.path if script is not None and not isinstance(script, list) else "?"
    print(f"new revision: {path} (review it, then add its test data to tests/store/test_migrations.py)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="knee-cds", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the service under gunicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=int(os.environ.get("CDS_PORT", "8080")))
    serve.add_argument("--config", type=Path,
                       default=Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py")
    serve.set_defaults(handler=_serve)
    evaluate = commands.add_parser("evaluate", help="evaluate a CDS Hooks request file or a FHIR Bundle")
    evaluate.add_argument("file")
    evaluate.add_argument("--json", action="store_true", help="print the CDS Hooks response JSON")
    evaluate.add_argument("--as-of", help="evaluate as at this date/time (ISO 8601), e.g. 2026-11-21")
    evaluate.add_argument("--cards", help="knowledge directory (default: CDS_CARDS_DIR or ./cards)")
    evaluate.set_defaults(handler=_evaluate)
    add_casekit_parsers(commands)
    db = commands.add_parser("db", help="schema migrations of the store (CDS_DATABASE_URL)")
    db.add_argument("--url", help="database URL (default: CDS_DATABASE_URL)")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="upgrade the schema (to the newest revision by default)")
    upgrade.add_argument("revision", nargs="?", default="head")
    db_commands.add_parser("current", help="print the schema revision of the database and the newest known")
    db_commands.add_parser("downgrade", help="downgrade the schema by one revision")
    db_commands.add_parser("purge", help="clear comments and delete rows older than the retention (CDS_RETENTION_DAYS)")
    revision = db_commands.add_parser("revision", help="(developers) write a new revision from schema.py")
    revision.add_argument("-m", "--message", required=True)
    db.set_defaults(handler=_db)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except (KnowledgeError, ConfigError) as exc:
        print(f"knee-cds: configuration error: {exc}", file=sys.stderr)
        return 2
    except PatientMismatch as exc:
        print(f"knee-cds: {exc.message}: {exc.details.get('resources_of_another_patient')}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"knee-cds: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
