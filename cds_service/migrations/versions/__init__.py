"""One module per revision, oldest first; `knee-cds db revision -m "..."` writes the next one."""
