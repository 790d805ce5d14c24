"""Where the service's last unhandled exception was raised, for the message of a 5xx in a robustness test."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path


class LastError(logging.Handler):
    """Remembers where the last unhandled exception of the service was raised (for 5xx messages)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.where = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            frame = traceback.extract_tb(record.exc_info[2])[-1]
            self.where = (f"{type(record.exc_info[1]).__name__} at {Path(frame.filename).name}:"
                          f"{frame.lineno}: {record.exc_info[1]}")


LAST_ERROR = LastError()
