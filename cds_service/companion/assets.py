"""Optional: fhirclient's browser build, so the companion page can show the patient's name after a SMART
EHR launch. Fetched from npm with `npm pack` (the package's own tarball, no dependencies: its browser
build is self-contained) into cds_service/companion/vendor/ (never committed).

    python -m cds_service.companion.assets      # or: make companion-assets
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

FHIRCLIENT_VERSION = "2.6.3"
VENDOR = Path(__file__).resolve().parent / "vendor"
FHIRCLIENT_JS = VENDOR / "fhir-client.min.js"


def install_fhirclient(target: Path = VENDOR, version: str = FHIRCLIENT_VERSION) -> Path:
    """Put fhirclient's browser build at `target`/fhir-client.min.js (once); returns its path."""
    script = target / "fhir-client.min.js"
    if script.is_file():
        return script
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: fhirclient (optional) cannot be fetched")
    with tempfile.TemporaryDirectory() as work:
        done = subprocess.run([npm, "pack", "--silent", f"fhirclient@{version}"], cwd=work, capture_output=True,
                              text=True, timeout=300, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"npm pack fhirclient@{version} failed: {done.stderr[-1000:]}")
        with tarfile.open(Path(work) / f"fhirclient-{version}.tgz") as tar:
            member = tar.extractfile("package/build/fhir-client.min.js")
            if member is None:
                raise RuntimeError("fhirclient's tarball holds no build/fhir-client.min.js")
            target.mkdir(parents=True, exist_ok=True)
            partial = script.with_suffix(".part")
            partial.write_bytes(member.read())
            partial.replace(script)
    return script


if __name__ == "__main__":
    print(install_fhirclient())
    sys.exit(0)
