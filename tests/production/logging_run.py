"""``uvicorn.run(app)`` after ``hoptel.setup()`` (done when ``logging_app`` is imported), uvicorn's default logging.

Usage: ``python logging_run.py PORT``.
"""

from __future__ import annotations

import sys

import uvicorn
from logging_app import app

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]))
