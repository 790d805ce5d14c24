# Posterior knee pain CDS Hooks service: production image.
#
#   bash deploy/build-image.sh            (make image; podman, buildah or docker)
#   docker build -t posterior-knee-cds:0.1.0 .
#
# Two stages. `builder` makes /opt/venv from the pinned runtime set in deploy/constraints.txt plus
# the project's wheel; `runtime` gets only that venv, the knowledge files (cards/) and the gunicorn
# config: no pip, no build tools, no compilers, no caches. Runs as uid 10001 and works with a
# read-only root file system given writable /tmp and /var/lib/cds (see docs/deployment.md).
#
# PYTHON_IMAGE must be a Debian-based CPython 3.11 image providing `python3 -m venv`; both stages
# must use the same one (the venv links to its interpreter). Without Docker Hub, build-image.sh
# builds a local stand-in tagged python:3.11-slim (deploy/offline-base-image.sh).
ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

# PIP_CERT: Debian's CA bundle (present in both the official and the offline base). On machines
# behind a TLS-inspecting proxy the build mounts the host's bundle over it, read-only, for the
# build only (build-image.sh); it is never copied into an image layer.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Build tools live in their own venv (/opt/build), which the runtime stage never sees; /opt/venv is
# created without pip and filled with `pip --python`. The few pure-Python dependencies published as
# source only (deploy/source-only.txt, e.g. medspaCy) become wheels first; everything is then
# installed from wheels.
COPY deploy/build-requirements.txt deploy/constraints.txt deploy/source-only.txt deploy/
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip install --no-cache-dir -r deploy/build-requirements.txt \
 && grep -v '^#' deploy/source-only.txt | sed '/^$/d' > /tmp/source-only.txt \
 && grep -i -E "^($(paste -sd'|' /tmp/source-only.txt))==" deploy/constraints.txt > /tmp/source-pins.txt \
 && /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation -w /tmp/source-wheels \
      -r /tmp/source-pins.txt \
 && python3 -m venv --without-pip /opt/venv \
 && /opt/build/bin/pip --python /opt/venv/bin/python install --no-cache-dir --only-binary=:all: \
      --find-links /tmp/source-wheels -r deploy/constraints.txt

# The project itself: a wheel, installed without dependencies (they are all pinned above), then
# `pip check` fails the build if pyproject.toml needs something constraints.txt lacks.
COPY pyproject.toml README.md ./
COPY cds_service/ cds_service/
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation -w /tmp/wheels . \
 && /opt/build/bin/pip --python /opt/venv/bin/python install --no-cache-dir --no-deps /tmp/wheels/*.whl \
 && /opt/build/bin/pip --python /opt/venv/bin/python check \
 && /opt/venv/bin/python -c "import cds_service, gunicorn, prometheus_client, psycopg, alembic, medspacy" \
 && test -f "$(/opt/venv/bin/python -c 'import cds_service.migrations as m, os; print(os.path.dirname(m.__file__))')/script.py.mako"

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# An unprivileged user with a real home (gunicorn >= 25 would put its control socket under $HOME; the
# config disables it, the home keeps other tools happy). /var/lib/cds holds the SQLite feedback
# store: mount a volume (or emptyDir) there when the root file system is read-only.
RUN groupadd --gid 10001 cds \
 && useradd --no-log-init --uid 10001 --gid 10001 --home-dir /home/cds --create-home \
      --shell /usr/sbin/nologin cds \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/cds

COPY --from=builder /opt/venv /opt/venv
COPY cards/ /app/cards/
COPY deploy/gunicorn.conf.py deploy/healthcheck.py /app/

ENV PATH=/opt/venv/bin:$PATH \
    HOME=/home/cds \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CDS_BIND=0.0.0.0:8080 \
    CDS_AUTH=required \
    CDS_PRODUCTION=true \
    CDS_CARDS_DIR=/app/cards \
    CDS_TRUSTED_ISSUERS=/app/cards/trust/production.yaml \
    CDS_DATABASE_URL=sqlite:////var/lib/cds/feedback.sqlite3 \
    CDS_MANAGEMENT_PORT=9090 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus

WORKDIR /app
USER 10001:10001
# 8080: CDS Hooks endpoints; 9090: /healthz, /readyz, /metrics only (CDS_MANAGEMENT_PORT), so a
# NetworkPolicy can keep the metrics and probes apart from the EHR's traffic.
EXPOSE 8080 9090

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python3", "/app/healthcheck.py"]

CMD ["gunicorn", "--config", "/app/gunicorn.conf.py", "cds_service.wsgi:app"]

# Metadata last: a new build date or revision does not invalidate the cached layers above.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://example.invalid/posterior-knee-cds
ARG CREATED=unknown

# The commit is reported by the cds_build_info metric.
ENV CDS_BUILD_COMMIT=${REVISION}

LABEL org.opencontainers.image.title="posterior-knee-cds" \
      org.opencontainers.image.description="CDS Hooks 2.0 service (patient-view): posterior knee pain red flags and differentials" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
