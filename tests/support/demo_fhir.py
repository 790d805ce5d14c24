"""An open FHIR R4 server with a demo knee-pain patient, for trying the service in the CDS Hooks sandbox.

    .venv/bin/python -m tests.support.demo_fhir                 # FHIR on :8090, service expected on :8081
    .venv/bin/python -m tests.support.demo_fhir --port 9090 --service http://127.0.0.1:9000/cds-services

It runs the same Medplum engine as the integration tests (with CORS, and the sandbox's launch-id
endpoint so SMART links open), on 127.0.0.1 only, and prints the sandbox URL with every setting in its
query. Needs the engine's npm packages: `cd tests/fhir_server && npm ci` (or one `make test`).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from urllib.parse import quote

from tests.support import fhir as F
from tests.support.fhir_server import FhirTestServer

DEMO_PATIENT = "knee-demo"
DEFAULT_PORT = 8090
DEFAULT_SERVICE = "http://127.0.0.1:8081/cds-services"
DEFAULT_SANDBOX = "http://127.0.0.1:8080/"


def demo_resources() -> list[dict[str, object]]:
    """A 58-year-old three weeks after a knee replacement, with calf signs and tachycardia."""
    pid = DEMO_PATIENT
    return [
        F.patient(pid, age=58),
        F.condition(F.ICD10, "M79.662", "Pain in left lower leg", pid),
        F.procedure(F.SNOMED, "609588000", "Total knee replacement", pid, days=21),
        F.finding("deep-vein-tenderness", "Tenderness along the deep veins", pid),
        F.finding("calf-swelling-3cm", "Left calf 3.5 cm larger than right", pid),
        F.heart_rate(112, pid=pid),
    ]


def sandbox_url(sandbox: str, fhir_base: str, service: str, patient: str = DEMO_PATIENT) -> str:
    """The sandbox URL with the FHIR server, patient, discovery URL and hook in its query."""
    return (f"{sandbox}?fhirServiceUrl={quote(fhir_base, safe='')}&patientId={patient}"
            f"&serviceDiscoveryURL={quote(service, safe='')}&hook=patient-view")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.support.demo_fhir", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_FHIR_PORT", DEFAULT_PORT)),
                        help=f"port of the FHIR server on 127.0.0.1 (default {DEFAULT_PORT}; 0 = any free port)")
    parser.add_argument("--service", default=os.environ.get("CDS_DISCOVERY_URL", DEFAULT_SERVICE),
                        help=f"the service's discovery URL, as the browser reaches it (default {DEFAULT_SERVICE})")
    parser.add_argument("--sandbox", default=DEFAULT_SANDBOX,
                        help=f"where the sandbox is served (default {DEFAULT_SANDBOX}; the public one works too)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with FhirTestServer(port=args.port) as server:
        server.load(demo_resources(), transaction=True)
        print(f"FHIR R4 server: {server.base_url} (patient {DEMO_PATIENT})")
        print(f"CDS service discovery URL: {args.service}")
        print("Open the CDS Hooks sandbox at:")
        print(f"  {sandbox_url(args.sandbox, server.base_url, args.service)}", flush=True)
        try:
            while server.running:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
