"""Capture what TensorRT says, so a failure is reported with TensorRT's own lines.

TensorRT never raises for a failed parse, build or deserialization: the call returns
None / False and the reason goes only to the logger given to ``trt.Builder`` or
``trt.Runtime``. Two ways to get at it:

- TensorRT 8.0+: a ``trt.ILogger`` subclass receives every message (what NVIDIA's own
  tools do from 8.0 on).
- Before 8.0 custom Python loggers are not dependable, so the built-in ``trt.Logger``
  prints (``[TensorRT] ERROR: ...``) and we capture the process's stdout/stderr file
  descriptors around each TensorRT call, then parse the lines.

Either way the messages end up as :class:`LogRecord` objects in :class:`TrtLog` and
are echoed to stderr in one format.
"""

import contextlib
import os
import re
import sys
import tempfile

SEVERITIES = ("INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE")
ERROR_SEVERITIES = ("INTERNAL_ERROR", "ERROR")
# Lines captured from a file descriptor that are not in a TensorRT format.
UNTAGGED = "OUTPUT"

# "[TensorRT] ERROR: msg" (<= 8.0 built-in logger)
_CLASSIC_LINE = re.compile(r"^\[TensorRT\] (INTERNAL ERROR|ERROR|WARNING|INFO|VERBOSE): ?(.*)$")
# "[05/02/2022-15:17:45] [TRT] [E] msg" (8.2+ built-in logger)
_STAMPED_LINE = re.compile(r"^\[\d\d/\d\d/\d{4}-\d\d:\d\d:\d\d\] \[TRT\] \[([FEWIV])\] ?(.*)$")
_LETTER_SEVERITY = {
    "F": "INTERNAL_ERROR", "E": "ERROR", "W": "WARNING", "I": "INFO", "V": "VERBOSE",
}


class LogRecord(object):
    __slots__ = ("severity", "message")

    def __init__(self, severity, message):
        self.severity = severity
        self.message = message

    def is_error(self):
        return self.severity in ERROR_SEVERITIES

    def __str__(self):
        if self.severity == UNTAGGED:
            return self.message
        return "[TensorRT] {}: {}".format(self.severity.replace("_", " "), self.message)

    def __repr__(self):
        return "LogRecord({!r}, {!r})".format(self.severity, self.message)


def parse_line(line):
    """One line of TensorRT's built-in logger output -> LogRecord (UNTAGGED if unknown)."""
    line = line.rstrip("\r\n")
    match = _CLASSIC_LINE.match(line)
    if match:
        return LogRecord(match.group(1).replace(" ", "_"), match.group(2))
    match = _STAMPED_LINE.match(line)
    if match:
        return LogRecord(_LETTER_SEVERITY[match.group(1)], match.group(2))
    return LogRecord(UNTAGGED, line)


def severity_name(trt, severity):
    """A ``trt.Logger.Severity`` value -> one of SEVERITIES."""
    for name in SEVERITIES:
        if name == "VERBOSE" and not hasattr(trt.Logger, "VERBOSE"):
            continue  # TensorRT 5.0 has no VERBOSE
        if severity == getattr(trt.Logger, name):
            return name
    return str(severity).rsplit(".", 1)[-1]


class TrtLog(object):
    """Records of everything TensorRT said at ``min_severity`` or above.

    ``logger`` is what to hand to ``trt.Builder`` / ``trt.Runtime`` /
    ``trt.init_libnvinfer_plugins``; wrap every TensorRT call that may fail in
    ``with log.capturing():`` so the fd-capture mode sees its output.
    """

    def __init__(self, trt, use_python_logger, min_severity="WARNING", echo=None):
        if min_severity not in SEVERITIES:
            raise ValueError("min_severity must be one of {}".format(", ".join(SEVERITIES)))
        self.records = []
        self._wanted = SEVERITIES[: SEVERITIES.index(min_severity) + 1]
        self._echo = sys.stderr if echo is None else echo
        self.use_python_logger = use_python_logger
        if use_python_logger:
            self.logger = _make_recording_logger(trt, self)
        else:
            level = min_severity if hasattr(trt.Logger, min_severity) else "INFO"
            self.logger = trt.Logger(getattr(trt.Logger, level))

    def add(self, severity, message):
        """Record one message (called by the ILogger subclass or the fd parser)."""
        if severity != UNTAGGED and severity not in self._wanted:
            return
        record = LogRecord(severity, message)
        self.records.append(record)
        self._echo.write(str(record) + "\n")
        self._echo.flush()

    @contextlib.contextmanager
    def capturing(self):
        """Around a TensorRT call: in fd mode, collect what it prints on fds 1 and 2."""
        if self.use_python_logger:
            yield
            return
        captured = []
        try:
            with _captured_fds(captured):
                yield
        finally:
            for line in "".join(captured).splitlines():
                if line.strip():
                    record = parse_line(line)
                    self.add(record.severity, record.message)

    def mark(self):
        """A position in the records, to get what was said since with ``since``."""
        return len(self.records)

    def since(self, mark):
        return self.records[mark:]


def _make_recording_logger(trt, sink):
    # Defined here because tensorrt is imported lazily; pybind11 needs the base
    # __init__ called explicitly.
    class RecordingLogger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            sink.add(severity_name(trt, severity), msg)

    return RecordingLogger()


@contextlib.contextmanager
def _captured_fds(into, fds=(1, 2)):
    """Point fds 1 and 2, and sys.stdout / sys.stderr, at one temp file during the body.

    Catches C++ writers (the fds) and Python writers even when sys.stderr is not fd 2.
    What was written is appended to the list ``into`` when the body ends.
    """
    with tempfile.TemporaryFile() as sink, \
            open(sink.fileno(), "w", buffering=1, closefd=False) as text_sink:
        saved_streams = (sys.stdout, sys.stderr)
        for stream in saved_streams:
            stream.flush()
        saved = [(fd, os.dup(fd)) for fd in fds]
        try:
            for fd in fds:
                os.dup2(sink.fileno(), fd)
            sys.stdout = sys.stderr = text_sink
            yield
        finally:
            text_sink.flush()
            sys.stdout, sys.stderr = saved_streams
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            into.append(sink.read().decode("utf-8", "replace"))
