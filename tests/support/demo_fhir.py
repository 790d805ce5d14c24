"""An open FHIR R4 server with a demo knee-pain patient, for trying the service in the CDS Hooks sandbox.

    .venv/bin/python -m tests.support.demo_fhir          # prints the sandbox URL; Ctrl-C stops it

It runs the same Medplum engine as the integration tests (with CORS), on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import time
from urllib.parse import quote

from tests.support import fhir as F
from tests.support.fhir_server import FhirTestServer

DEMO_PATIENT = "knee-demo"


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


def main() -> None:
    service = os.environ.get("CDS_DISCOVERY_URL", "http://127.0.0.1:8081/cds-services")
    with FhirTestServer() as server:
        server.load(demo_resources(), transaction=True)
        print(f"FHIR R4 server: {server.base_url} (patient {DEMO_PATIENT})")
        print("Open the CDS Hooks sandbox with:")
        print(f"  ?fhirServiceUrl={quote(server.base_url, safe='')}&patientId={DEMO_PATIENT}"
              f"&serviceDiscoveryURL={quote(service, safe='')}&hook=patient-view", flush=True)
        try:
            while server.running:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
