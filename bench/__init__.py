"""Benchmarks of the CDS service: `make bench` (= `python -m bench`) writes docs/performance.md.

Sections: in-process evaluation time against record size (`bench.inprocess`), HTTP throughput and
latency under gunicorn with wrk beside a bare Flask app (`bench.load`), and the fallback fetch from the
real FHIR engine of the integration tests (`bench.fallback`). Inputs come from `bench.data` (the Synthea
patients of ../shared plus knee-pain fixtures); targets and the document from `bench.report`.
"""
