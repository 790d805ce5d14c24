"""The knowledge test kit: patient cases as YAML (cards/tests), `knee-cds test`, `knee-cds diff` and
coverage. Format and commands: cards/tests/README.md. The kit uses the service's evaluation exactly as
the HTTP API does (through `engine`), never Flask.

Modules: `yamlio` (YAML with line numbers and clear errors), `times` (relative times), `shorthand`
(compact FHIR → FHIR R4 JSON), `loader` (case files, includes, the patient), `expect` (expectations and
their comparison), `engine` (the evaluation), `outcome` (cards as the kit reads them), `runner`,
`report` (text, JUnit, JSON), `diff` (card changes between knowledge versions), `coverage`, `cli`.
"""
