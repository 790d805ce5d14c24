"""Container HEALTHCHECK: exit 0 when GET /healthz on the local gunicorn answers 2xx, else 1.

Uses only the standard library (the image has no curl). The port is CDS_MANAGEMENT_PORT when set
(health answers only there then), else the port of CDS_BIND, like the server's. Proxy variables
are ignored: the check must reach this container, not a proxy.
"""

import os
import sys
import urllib.request

bind = os.environ.get("CDS_BIND", "").strip() or "0.0.0.0:8080"
port = bind.rsplit(":", 1)[-1] if ":" in bind else "8080"
management = os.environ.get("CDS_MANAGEMENT_PORT", "").strip()
if management and management != "0":
    port = management
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
        sys.exit(0 if 200 <= response.status < 300 else 1)
except Exception as exc:  # any failure means "unhealthy"
    print(f"healthcheck failed: {exc}", file=sys.stderr)
    sys.exit(1)
