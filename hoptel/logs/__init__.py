"""The log pipeline: ``HOPTEL_LOG`` directives, a non-blocking queue handler, JSON/text lines, OTLP log export.

It also takes over the loggers of uvicorn and gunicorn, notices a later logging reconfiguration, and keeps its lines
and the application's ``print()`` lines whole on a shared stdout.

>>> from hoptel.logs import parse_directives
>>> str(parse_directives("INFO, grpc=warn"))
'info,grpc=warning'
"""

from hoptel.logs.directives import Directives, parse_directives
from hoptel.logs.grpc_verbosity import GrpcVerbosity, quiet_grpc_core
from hoptel.logs.pipeline import LogPipeline

__all__ = ["Directives", "GrpcVerbosity", "LogPipeline", "parse_directives", "quiet_grpc_core"]
