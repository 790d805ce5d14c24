"""Robustness tests: fuzzing, FHIR server faults, malformed resources and feedback durability."""
