# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CDS_PORT ?= 8080
CDS_HOST ?= 127.0.0.1
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: companion-assets run test lint bench soak load-tool image smoke clean help

help:
	@echo "make run    start the service on http://$(CDS_HOST):$(CDS_PORT)/cds-services"
	@echo "make test   run the whole test suite (unit and integration)"
	@echo "make lint   ruff"
	@echo "make bench  benchmarks, written to docs/performance.md"
	@echo "make soak   bounded load and soak run"
	@echo "make image  build the container image (podman, buildah or docker)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# Optional: fhirclient's browser build for the companion page (the patient's name after a SMART launch)
companion-assets: $(STAMP)
	$(BIN)/python -m cds_service.companion.assets

run: $(STAMP)
	@mkdir -p var
	@echo "Discovery: http://$(CDS_HOST):$(CDS_PORT)/cds-services"
	CDS_AUTH=$${CDS_AUTH:-off} CDS_DATABASE_URL=$${CDS_DATABASE_URL:-sqlite:///$(CURDIR)/var/feedback.sqlite3} \
	  exec $(BIN)/gunicorn --config deploy/gunicorn.conf.py --bind $(CDS_HOST):$(CDS_PORT) 'cds_service.wsgi:app'

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# wrk (Debian) drives the load sections; installed here when missing and we are root.
load-tool:
	@command -v wrk >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
	  (apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk)) >/dev/null 2>&1 || true
	@command -v wrk >/dev/null 2>&1 || echo "wrk is missing (apt-get install wrk): the load section is skipped, the soak uses Python"

bench: $(STAMP) load-tool
	$(BIN)/python -m bench

soak: $(STAMP) load-tool
	$(BIN)/python -m bench.soak

image:
	bash deploy/build-image.sh

smoke:
	bash deploy/smoke-test.sh

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache tests/fhir_server/node_modules
