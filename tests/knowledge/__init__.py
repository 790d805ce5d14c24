"""Knowledge files checked against external releases."""
