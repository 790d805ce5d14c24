"""`make bench` = `python -m bench`: measure, print the tables and PASS/FAIL lines, write the doc.

Exits 0 when the bench ran, whether the targets passed or not: docs/performance.md says which failed
and why. A section that cannot run (no wrk, no npm for the FHIR engine) is reported as not measured.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import data, fallback, inprocess, load, profile, report, store
from .stats import markdown_table, ms, ratio

LADDER = (10, 100, 1_000, 10_000)
PARSING_BARE = "bare Flask + orjson parse"
DESIGN = """\
What the service does to stay fast (the figures above show the effect; the code says how):

- **Validate only what becomes evidence.** A resource is validated only when it gives a statement
  the rules read (a known code, a matched text); of it, only the elements the rules read
  (`READ_ELEMENTS` in `cds_service/recognition/validation.py`). A Synthea Patient with a dozen
  extensions is validated as `{id, birthDate, gender}`.
- **A quick check before the model** (`cds_service/recognition/shapes.py`): built at start-up from the
  `fhir.resources` models' own metadata (element types, cardinality, required elements, choice
  groups), it vouches only for the plainest shapes (no extension, full calendar dates, printable
  codes) and sends everything else to the model, so every verdict is the model's;
  `tests/recognition/test_shapes.py` compares both on the real records and thousands of mutations.
- **Decode only what is read** (`cds_service/hook_body.py`): msgspec splits the body into its parts
  without building them, orjson parses each resource (the same parser and values as before), and a
  resource of a type the service does not read is kept as its type, id, subject and patient. The
  body is read in its own size (a read of the 16 MB limit allocated that much for every call).
- **Check nesting where Python recurses.** orjson refuses more than 1,024 levels anywhere; the
  request envelope and each resource about to be validated are checked against `CDS_MAX_JSON_DEPTH`.
  Walking the whole body cost more than parsing it.
- **Pause the cyclic collector during a hook call** (`cds_service/gc_pause.py`): a parsed prefetch has
  no cycles and is freed by reference counting when the call ends, but its allocations triggered
  collections that scanned it again and again. The pause is shared by a worker's threads and bounded:
  a call joins it only within a second of its start, so the collector runs again at the latest when
  those calls end, however busy the worker is.
- **Cards shown are queued, not written, on the hook call's path**: a background thread per worker
  writes them in batches without waiting for the disk (SQLite WAL `synchronous=NORMAL`, PostgreSQL
  `synchronous_commit=off`), so a slow or hung database never delays a card (section 4); feedback
  still waits for its commit to reach the disk.
- **Nothing per request that can be done once**: code lists, card texts, concept index, FHIR model
  schemas, the quick checks and the OpenAPI document are loaded and warmed up when a worker starts;
  the hot path's metric children are bound once per process (`metrics.bound`); each worker freezes
  its start-up heap (`gc.freeze` in `post_worker_init`), so a full collection no longer walks it.
- **Per-worker memories of what codings say** (`cds_service/recognition/`): the statements of a coding
  as written (system, code, display), the code-list answer of a (system, code), and CodeableConcepts
  known to say nothing, each bounded (20,000 entries, emptied when full; long keys never kept). A bench
  that repeats one body hits them every time; a clinic's records share most of their codings (vital
  signs, laboratory tests), and a cold read costs about 5–15 % more on the Synthea records
  (`tests/recognition/test_worker_memos.py` checks that cold and warm reads give the same record).
- **Observations no rule can read are left early**: a code no list knows and an answer that names no
  finding stop before the label, status and facts are built (256 of isaura-dietrich's 262).
- **One log line per request**: the service's own JSON line; gunicorn's access line, which repeated it
  at about a sixth of a typical call's CPU, is off unless `CDS_ACCESS_LOG` asks for it.
- **The cards-shown queue is a deque**: a call appends; the writer is woken only when it sleeps and
  gathers 10 ms of calls per transaction (a `queue.Queue` woke it on every call).
- **The record answers by concept**: each section's facts are grouped by concept on the first query;
  the rules ask about 47 questions per call, most about concepts the record never states.

The throughput target compares the service with an endpoint that does not read its input. The
diagnostic row measures what parsing the body alone costs against that baseline (quoted in the target
line above); beyond the parse, every call builds a record and validates FHIR, which no constant
endpoint does. The ratio is reported as measured rather than tuned against a repeated request body
(a cache of validated resources would do that, and would not make a real clinic's calls faster).
"""
TYPICAL = 100  # resources the fallback section's FHIR engine holds
MEMORY_INTRO = """\
One POST of each body through the Flask test client (after two warm-up POSTs of the same body) under
`tracemalloc`: the peak of what the call allocated above what the app held before, i.e. what one request
in flight holds at its largest: the body bytes, the decoded resources, the record, the cards and the
response. The body is decoded by `cds_service/hook_body.py` (msgspec splits the body without building
it, orjson parses one resource at a time, resources of types the service does not read are kept as
type, id, subject and patient only), so orjson's own document tree of the whole body (about 12× the
body) is never built."""
PROFILE_INTRO = """\
The service under gunicorn as shipped, while wrk sends the typical call at 10 connections: py-spy
samples each worker's threads that hold the GIL (bench/profile.py), and each sample is charged to the
first pipeline step in its stack. The share of samples is the share of the worker's CPU; times the
server CPU per call of the same run it gives milliseconds per call. The bare Flask floor is the
"Flask around the call" and "gunicorn" rows plus reading the body; everything else is the service's
own work."""

SWEEP_INTRO = """\
The service under gunicorn (shipped worker class, the service's own request log at INFO, SQLite
feedback store) with each count of workers and threads: wrk at 10 connections, the typical call then
the large record, with the server's CPU (master and workers, user and system, from /proc) per request.
Every configuration runs at once, idle while another is measured, and the runs alternate: three
rounds, each measuring every configuration in turn in a rotated order, so all of them share the noise
of the other work on this machine. A cell is the median of the rounds; "each round" lists every
round's req/s, which shows that noise."""
SWEEP_READING = """\
Why the shipped default is 2 workers × 4 threads (`CDS_WORKERS`, `CDS_THREADS`): the work is CPU-bound
Python, so a worker runs one call at a time whatever its threads (the GIL), and two cores give two
workers' worth of CPU; more workers than cores add context switches and memory (each worker holds the
code lists, the FHIR models and the clinical text reader) without adding throughput. Threads per worker
were measured against each other with alternating runs (docs/reliability.md section 10, 2026-12-03).
Fewer threads did not win: two earlier sweeps that ran one configuration after the other had 2 × 2 14–16
% ahead of 2 × 4 on the typical call, but with the runs alternated 2 × 2 reached 0.85× and 1.01× of 2 ×
4 on the typical call and 0.87× and 0.82× on the large record in two runs (medians of the per-round
ratios; single rounds from 0.4× to 1.4×), at the same or a little more CPU per call (1.03–1.15×): the
spread between rounds of one configuration is larger than any difference between 1 and 4 threads. Where
threads matter, they matter a lot: a thread is also what waits on I/O inside a call, the FHIR fallback
fetch when the EHR sends no prefetch (about a second per call in that test), note attachments fetched by
URL, the replay and feedback stores under a database outage (bounded by their deadlines). With four
fallback calls in flight, as many as 2 × 2 has threads, typical calls beside them fell to 24 req/s (p50
0.4–0.7 s) against 216 req/s (p50 27–42 ms) with 2 × 4, which held 134–498 req/s up to eight.
`BufferingWorker` reads every request whole in its event loop, so slow clients hold no thread with
either count (the slow-client probes pass with 2 threads too). Even where every call comes with its
prefetch, `CDS_THREADS=2` showed nothing to gain; the default keeps the threads that wait."""
CONNECTIONS = (1, 10, 50)
DEFAULT_OUTPUT = data.ROOT / "docs" / "performance.md"


class Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def log(self, message: str) -> None:
        print(f"[bench {time.monotonic() - self.started:6.1f} s] {message}", file=sys.stderr,
              flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="a fast, rough run (2 s per load point, few iterations); written to "
                             "--output only when given")
    parser.add_argument("--wrk-seconds", type=float, default=None,
                        help="duration of each wrk point (default 10, quick 2)")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"markdown file to write (default {DEFAULT_OUTPUT.relative_to(data.ROOT)})")
    parser.add_argument("--skip-load", action="store_true", help="no wrk section")
    parser.add_argument("--skip-fallback", action="store_true", help="no FHIR-engine section")
    parser.add_argument("--skip-store", action="store_true", help="no store section (PostgreSQL)")
    return parser.parse_args(argv)


def guarded(clock: Clock, name: str, errors: dict[str, str], action: Callable[[], Any]) -> Any:
    """Run one section; on failure note why and go on (the doc reports it as not measured)."""
    try:
        return action()
    except Exception as exc:  # a failed section must not stop the others
        errors[name] = f"{type(exc).__name__}: {exc}".strip()[:600]
        clock.log(f"{name} failed: {errors[name]}")
        traceback.print_exc(file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quick = args.quick
    wrk_seconds = args.wrk_seconds or (2.0 if quick else 10.0)
    output = args.output or (None if quick else DEFAULT_OUTPUT)
    clock = Clock()
    machine = report.Machine()
    errors: dict[str, str] = {}
    workdir = Path(tempfile.mkdtemp(prefix="cds-bench-"))
    try:
        return _run(args, quick, wrk_seconds, output, clock, machine, errors, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(args: argparse.Namespace, quick: bool, wrk_seconds: float, output: Path | None,
         clock: Clock, machine: report.Machine, errors: dict[str, str], workdir: Path) -> int:
    clock.log(f"building request bodies (Synthea patients in {data.SYNTHEA_DIR})")
    ladder = [data.ladder_request(size) for size in LADDER]
    largest_name = data.largest_patient()
    patients = [data.patient_request(name) for name in data.PATIENT_FILES]
    largest = next(p for p in patients if p.label == largest_name.removesuffix(".json"))
    typical = data.typical_request()
    notes = data.notes_request()
    texts = data.many_texts_request()
    by_size = {r.resources: r for r in ladder}
    data.release()  # the parsed Synthea files are not needed any more (keep the heap like a worker's)

    # ---- 1. in process --------------------------------------------------------------------------
    clock.log("in-process: starting the app (create_app, temporary SQLite)")
    app = inprocess.make_app(inprocess.default_database_url(workdir))
    rows: list[inprocess.Row] = guarded(clock, "in-process", errors, lambda: inprocess.measure_all(
        [typical, notes, texts, *ladder, *patients], app=app, rounds=4 if quick else 20,
        warmup=1 if quick else 2, progress=clock.log)) or []
    clock.log("memory per request (tracemalloc)")
    memory: list[inprocess.Memory] = guarded(clock, "memory", errors, lambda: inprocess.measure_memory(
        app, [typical, notes, largest, by_size[10_000], texts])) or []
    stage_requests = [typical, notes, by_size[1_000], by_size[10_000], largest]
    stages: list[inprocess.Stages] = []
    for request in stage_requests:
        clock.log(f"steps: {request.label}")
        found = guarded(clock, f"steps {request.label}", errors, lambda r=request: inprocess.measure_stages(
            app, r, iterations=3 if quick else 10))
        if found:
            stages.append(found)
    stage_of = {s.request.label: s for s in stages}
    with inprocess.quiet_service_logs():
        cards = app.test_client().post(data.SERVICE_PATH, data=typical.body,
                                       content_type="application/json").get_data()
        texts_answer = app.test_client().post(data.SERVICE_PATH, data=texts.body,
                                              content_type="application/json").get_json()
    incomplete = next((c["summary"] for c in texts_answer.get("cards", [])
                       if c["source"]["topic"]["code"] == "record-incomplete"), None)
    settings = inprocess.runtime_of(app).settings

    # ---- 2. under load --------------------------------------------------------------------------
    wrk_results: list[load.WrkResult] = []
    diagnostic: load.WrkResult | None = None
    sampled: profile.Profile | None = None
    sweep: list[load.SweepPoint] = []
    gunicorn: dict[str, Any] = {}
    if args.skip_load:
        errors["load"] = "skipped (--skip-load)"
    else:
        gunicorn = guarded(clock, "gunicorn settings", errors, load.gunicorn_settings) or {}
        outcome = guarded(clock, "load", errors, lambda: _load_section(
            clock, workdir, typical, largest, cards, wrk_seconds, errors))
        if outcome:
            wrk_results, diagnostic, sampled = outcome
        sweep = guarded(clock, "workers x threads", errors, lambda: _sweep_section(
            clock, workdir, typical, largest, max(3.0, wrk_seconds / 2))) or []

    # ---- 3. fallback fetch ----------------------------------------------------------------------
    fetch: fallback.FallbackResult | None = None
    if args.skip_fallback:
        errors["fallback"] = "skipped (--skip-fallback)"
    else:
        clock.log("fallback fetch: starting the FHIR engine (tests/support/fhir_server.py)")
        fetch = guarded(clock, "fallback", errors, lambda: fallback.measure(
            size=TYPICAL, delay_ms=100, iterations=5 if quick else 15,
            database_url=inprocess.default_database_url(workdir / "fallback"),
            progress=clock.log))

    # ---- 4. the store (cards shown, token replay) ------------------------------------------------
    store_rows: list[store.Row] = []
    if args.skip_store:
        errors["store"] = "skipped (--skip-store)"
    else:
        clock.log("store: cards shown and replay checks (SQLite, PostgreSQL healthy and frozen)")
        store_rows = guarded(clock, "store", errors, lambda: store.measure(
            workdir / "store", quick=quick, progress=clock.log)) or []

    # ---- targets and the document ---------------------------------------------------------------
    machine.load_end = report.load_average()
    targets = [
        report.target_throughput(wrk_results, "typical", 10, stage_of.get(typical.label), diagnostic,
                                 workers=gunicorn.get("workers"),
                                 in_process=next((r for r in rows if r.request is typical), None)),
        report.target_large_record(rows, largest.label, stage_of.get(largest.label)),
        report.target_memory(memory, largest.label),
        report.target_text_budget(rows, texts.label, settings.evaluation_deadline_ms,
                                  settings.text_max_count, incomplete),
        report.target_scaling(rows, by_size[1_000].label, by_size[10_000].label,
                              stage_of.get(by_size[1_000].label), stage_of.get(by_size[10_000].label)),
        report.target_fallback(fetch, errors.get("fallback", "")),
        report.target_no_failures(wrk_results),
    ]
    section_of = {"large-record": "in-process", "scaling": "in-process", "throughput": "load",
                  "failures": "load", "fallback": "fallback", "memory": "memory", "text-budget": "in-process"}
    for index, target in enumerate(targets):
        name = section_of[target.key]
        if target.measured == "not measured" and name in errors:
            targets[index] = report.Target(target.key, target.text, target.limit, target.measured,
                                           False, f"Not measured: the {name} section did not run "
                                                  f"({errors[name]}).")
    sections = _sections(rows, stages, wrk_results, diagnostic, fetch, typical, largest, errors)
    if memory:
        sections.insert(2 if stages else 1, ("Memory per request in flight", MEMORY_INTRO + "\n\n"
                                             + inprocess.memory_table(memory)))
    if sampled is not None or "profile" in errors:
        at = next(i for i, (title, _) in enumerate(sections) if title.startswith("2.")) + 1
        sections.insert(at, ("Profile of a worker under load", PROFILE_INTRO + "\n\n" + (
            profile.table(sampled) if sampled is not None else f"Not measured: {errors['profile']}")))
    if sweep:
        shipped = (gunicorn.get("workers"), gunicorn.get("threads"))
        at = next(i for i, (title, _) in enumerate(sections) if title.startswith("2.")) + 1
        sections.insert(at, ("Workers and threads", SWEEP_INTRO + "\n\n"
                             + load.sweep_table(sweep, shipped) + "\n\n" + SWEEP_READING))
    store_section = (store.INTRO + "\n\n" + store.table(store_rows) if store_rows
                     else f"Not measured: {errors.get('store', 'no rows')}")
    design = next(i for i, (title, _) in enumerate(sections) if title.startswith("Design choices"))
    sections.insert(design, ("4. The store on the hook call's path", store_section))
    extra = {
        "gunicorn (deploy/gunicorn.conf.py)": ", ".join(f"{k}={v}" for k, v in gunicorn.items())
        or "not read",
        "wrk": load.wrk_version(),
        "Run": "quick (rough)" if quick else f"full, {wrk_seconds:g} s per wrk point",
        "Bench duration": f"{time.monotonic() - clock.started:.0f} s",
    }
    text = report.document(machine=machine, machine_extra=extra, targets=targets, sections=sections,
                           notes=_notes(wrk_seconds), command="make bench")
    print(text)
    print("\n".join(report.summary_lines(targets)))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        clock.log(f"written: {output}")
    return 0


def _load_section(clock: Clock, workdir: Path, typical: data.BenchRequest,
                  large: data.BenchRequest, cards: bytes, seconds: float, errors: dict[str, str]
                  ) -> tuple[list[load.WrkResult], load.WrkResult | None, profile.Profile | None]:
    if load.wrk_path() is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install -y wrk)")
    bodies = {"typical": workdir / "typical.json", "large": workdir / "large.json"}
    bodies["typical"].write_bytes(typical.body)
    bodies["large"].write_bytes(large.body)
    (workdir / "cards.json").write_bytes(cards)
    script = load.write_script(workdir)
    env = load.base_env()
    # the floor: plain gunicorn with the shipped workers, threads and worker class, no access log
    bare_env = {**env, "BENCH_BARE_RESPONSE": str(workdir / "cards.json"), "CDS_ACCESS_LOG": "off"}
    specs = {
        "service": ("cds_service.wsgi:app",
                    {**env, "CDS_DATABASE_URL": f"sqlite:///{workdir}/load-feedback.sqlite3"}),
        "bare Flask": ("bench.bare_app:app", bare_env),
        PARSING_BARE: ("bench.bare_app:app", {**bare_env, "BENCH_BARE_PARSE": "1"}),
    }
    results: list[load.WrkResult] = []
    diagnostic = None
    clock.log(f"load: starting gunicorn (service, bare Flask, {PARSING_BARE})")
    with load.servers(specs, workdir) as running:
        for request in ("typical", "large"):
            for name in ("service", "bare Flask"):
                clock.log(f"load: warm-up {name}, {request}")
                load.run_wrk(running[name].url, bodies[request], 10, min(2.0, seconds),
                             server=name, request=request, script=script)
            for connections in CONNECTIONS:
                for name in ("service", "bare Flask"):
                    clock.log(f"load: {name}, {request}, {connections} connections, {seconds:g} s")
                    results.append(load.run_wrk(running[name].url, bodies[request], connections,
                                                seconds, server=name, request=request,
                                                script=script, cpu_of=running[name]))
        name = PARSING_BARE
        clock.log(f"load: {name} (diagnostic), typical, 10 connections")
        load.run_wrk(running[name].url, bodies["typical"], 10, min(2.0, seconds), server=name,
                     request="typical", script=script)
        diagnostic = load.run_wrk(running[name].url, bodies["typical"], 10, seconds, server=name,
                                  request="typical", script=script, cpu_of=running[name])
        sampled = guarded(clock, "profile", errors, lambda: profile.measure(
            running["service"], bodies["typical"], script, max(5.0, seconds), workdir))
    return results, diagnostic, sampled


def _sweep_section(clock: Clock, workdir: Path, typical: data.BenchRequest, large: data.BenchRequest,
                   seconds: float) -> list[load.SweepPoint]:
    if load.wrk_path() is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install -y wrk)")
    bodies = {"typical": workdir / "typical.json", "large": workdir / "large.json"}
    bodies["typical"].write_bytes(typical.body)
    bodies["large"].write_bytes(large.body)
    env = {**load.base_env(), "CDS_DATABASE_URL": f"sqlite:///{workdir}/sweep-feedback.sqlite3"}
    return load.sweep(load.WORKER_CONFIGS, bodies, seconds, load.write_script(workdir), env, workdir,
                      clock.log)


def _sections(rows: list[inprocess.Row], stages: list[inprocess.Stages],
              wrk_results: list[load.WrkResult], diagnostic: load.WrkResult | None,
              fetch: fallback.FallbackResult | None, typical: data.BenchRequest,
              large: data.BenchRequest, errors: dict[str, str]) -> list[tuple[str, str]]:
    sections = []
    intro = (
        "One app (create_app, auth off, temporary SQLite feedback store). **Flask POST**: the test "
        "client posting the body to `/cds-services/posterior-knee-pain` — everything the endpoint "
        "does, feedback-store write included. **Pure**: the same steps called directly (orjson "
        "parse, depth check, request model, prefetch resolve — every key present, nothing fetched — "
        "record, rules, cards, response serialise), without Flask and the store. **json.loads**: "
        "stdlib `json.loads` of the same body, the floor for any Python service that reads JSON. All "
        "rows are measured round-robin (each round: json.loads, pure, Flask POST of every body in "
        "turn), so the figures a target compares share the machine's noise; n = rounds. Ladder records: the "
        "Synthea resources of the types the service prefetches (all five patients, reused with new "
        "ids past 1,200), owned by one adult patient, plus 7 knee-pain fixtures (active Condition "
        "ICD-10-CM M79.662 onset 2 days ago, three exam findings, three vital signs). Patient rows: "
        "the whole Synthea file plus the same fixtures; the types the service does not prefetch ride "
        "along as `search.mode=include` entries, so every resource of the file is sent (compact "
        "JSON, hence a body smaller than the indented file)."
    )
    if rows:
        sections.append(("1. In-process evaluation time", intro + "\n\n" + inprocess.table(rows)))
    elif "in-process" in errors:
        sections.append(("1. In-process evaluation time", f"Not measured: {errors['in-process']}"))
    if stages:
        sections.append(("Where the time goes", _hotspots(stages, typical, large)))
    if wrk_results:
        body = (
            "gunicorn with deploy/gunicorn.conf.py (same workers, threads, worker class and keep-alive "
            "for both; gunicorn's access log off as shipped, the service writing its own line per request "
            "at INFO), 127.0.0.1, CDS_AUTH=off. **service**: `cds_service.wsgi:app` "
            "with a SQLite feedback store in a temporary directory on the same disk as the "
            "repository. **bare Flask**: `bench/bare_app.py`, which reads the body and answers the "
            "service's own response to the typical request. wrk POSTs the same body over and over: "
            f"**typical** = the {typical.resources}-resource ladder record ({typical.megabytes:.2f} MB), "
            f"**large** = {large.label} ({large.megabytes:.2f} MB body, file "
            f"{(large.source_bytes or 0) / 1e6:.2f} MB). wrk shares the cores with the servers.\n\n"
            + load.table(wrk_results) + "\n\n" + _share_table(wrk_results)
        )
        if diagnostic is not None:
            body += ("\n\nDiagnostic (not a target): the bare Flask endpoint that also parses the body "
                     "with orjson (`BENCH_BARE_PARSE=1`), the ceiling for any service that reads its "
                     "input, typical request, 10 connections:\n\n" + load.table([diagnostic]))
        sections.append(("2. HTTP under load (wrk)", body))
    elif "load" in errors:
        sections.append(("2. HTTP under load (wrk)", f"Not measured: {errors['load']}"))
    if fetch is not None:
        body = (
            "The FHIR engine of the integration tests (Medplum FhirRouter + MemoryRepository in Node, "
            f"tests/support/fhir_server.py) holds the {fetch.resources}-resource typical record; "
            f"`set_delay({fetch.delay_ms})` delays every answer. The service (create_app, test client, "
            "default FHIR timeouts, `fhir_server_allowlist=(<engine URL>,)`) gets a request with no "
            "`prefetch`, so it fetches every key itself, concurrently. Each key is also fetched alone "
            "with the service's own FhirClient (fresh Session, all pages), in the same loop. Cards of "
            f"the fetched record: {', '.join(fetch.card_topics) or 'none'}.\n\n" + fallback.table(fetch)
        )
        sections.append(("3. Fallback fetch", body))
    elif "fallback" in errors:
        sections.append(("3. Fallback fetch", f"Not measured: {errors['fallback']}"))
    sections.append(("Design choices behind these figures", DESIGN))
    if errors:
        sections.append(("Sections that did not run",
                         "\n".join(f"- {name}: {reason}" for name, reason in errors.items())))
    return sections


def _share_table(results: list[load.WrkResult]) -> str:
    rows = []
    for request in ("typical", "large"):
        for connections in CONNECTIONS:
            service = next((r for r in results if r.server == "service" and r.request == request
                            and r.connections == connections), None)
            bare = next((r for r in results if r.server == "bare Flask" and r.request == request
                         and r.connections == connections), None)
            if service and bare and bare.rps:
                rows.append([request, str(connections), f"{service.rps:,.0f}", f"{bare.rps:,.0f}",
                             f"{service.rps / bare.rps:.1%}",
                             ratio(service.p50_ms / bare.p50_ms) if bare.p50_ms else "-"])
    return markdown_table(["Request", "Connections", "service req/s", "bare req/s",
                           "service ÷ bare throughput", "service ÷ bare p50 latency"], rows)


def _hotspots(stages: list[inprocess.Stages], typical: data.BenchRequest,
              large: data.BenchRequest) -> str:
    text = ("Each step of the endpoint timed on its own (median of 10 iterations after one warm-up; "
            "the record, rules and cards steps call what `Evaluator.evaluate` calls, one at a time; "
            "the store write is `FeedbackStore.remember_cards` on the temporary SQLite file).\n\n"
            + inprocess.stages_table(stages) + "\n\nReading it (owners of the files named):\n")
    notes = []
    for stage in stages:
        s = {name: stage.steps[name] for name in inprocess.STEP_NAMES}
        parse = s[inprocess.DECODE].median
        depth = s["envelope depth check (runtime.py)"].median
        if parse > 0:
            model = s["request model (pydantic)"].median
            notes.append(f"- {stage.request.label}: the body decode {ms(parse)} ms; the envelope "
                         f"depth check `Runtime.too_deep` {ms(depth)} ms; the pydantic request "
                         f"model {ms(model)} ms; "
                         f"the record build {ms(s['recognition and record (recognition/)'].median)} ms; queueing "
                         f"the cards shown {ms(s['cards shown queued (store)'].median)} ms (p95 "
                         f"{ms(s['cards shown queued (store)'].p95)} ms).")
    return text + "\n".join(notes)


def _notes(wrk_seconds: float) -> list[str]:
    return [
        "Medians and nearest-rank p95 of wall-clock time (`time.perf_counter`); with fewer than 20 "
        "samples the p95 is the maximum.",
        f"wrk: `-t 1` for 1 connection, `-t 2` otherwise, {wrk_seconds:g} s per point after a 2 s "
        f"warm-up per server and body, `--timeout {load.WRK_TIMEOUT}` (a slower answer counts as a "
        "socket error). Service and bare Flask points are interleaved.",
        "Targets are ratios measured in the same run. The throughput target compares req/s at 10 "
        "connections; the failure target counts non-2xx answers and socket errors of every service "
        "run.",
        "Nothing here is timed by the test suite: `tests/test_bench_smoke.py` only checks that the "
        "in-process bench runs.",
    ]


if __name__ == "__main__":
    sys.exit(main())
