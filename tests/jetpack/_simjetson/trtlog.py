"""TensorRT loggers and how each generation's built-in Logger prints."""

import sys
import time

_TAGS = {0: "F", 1: "E", 2: "W", 3: "I", 4: "V"}
_WORDS = {0: "INTERNAL ERROR", 1: "ERROR", 2: "WARNING", 3: "INFO", 4: "VERBOSE"}


def format_line(version, severity, message):
    """Up to 8.0: "[TensorRT] ERROR: msg" on stderr; from 8.2: "[MM/DD/YYYY-HH:MM:SS] [TRT] [E]
    msg" on stdout (yaml build_and_deserialize_failure.default_logger_line_format)."""
    if version[:2] <= (8, 1):
        return "[TensorRT] {}: {}".format(_WORDS[int(severity)], message)
    stamp = time.strftime("%m/%d/%Y-%H:%M:%S")
    return "[{}] [TRT] [{}] {}".format(stamp, _TAGS[int(severity)], message)


class ILoggerImpl:
    """Base of trt.ILogger. Python subclasses implement log(severity, msg)."""

    def __init__(self):
        pass

    def log(self, severity, msg):
        raise NotImplementedError("ILogger.log is pure virtual: implement log(severity, msg)")


class LoggerImpl:
    """trt.Logger(min_severity=trt.Logger.WARNING)."""

    _VERSION = None  # set on the generated class
    _SEVERITY = None

    def __init__(self, min_severity=None):
        if min_severity is None:
            min_severity = self._SEVERITY.WARNING
        self.min_severity = self._SEVERITY(int(min_severity))

    def log(self, severity, msg):
        if int(severity) > int(self.min_severity):
            return
        line = format_line(self._VERSION, severity, msg)
        stream = sys.stderr if self._VERSION[:2] <= (8, 1) else sys.stdout
        stream.write(line + "\n")
        stream.flush()


def check_logger(logger, version, who):
    """Builders/Runtimes/parsers take a logger; reject what the real bindings reject."""
    if not callable(getattr(logger, "log", None)):
        raise TypeError("{}(): incompatible constructor arguments; expected a tensorrt.ILogger, "
                        "got {!r}".format(who, type(logger).__name__))
    if version[0] < 8 and not getattr(logger, "_SIMJETSON_BUILTIN_LOGGER", False):
        # Before 8.0 the bindings had no trampoline for Python ILogger subclasses
        # (Polygraphy gates ILogger subclassing on trt >= 8.0, see the reference).
        raise TypeError("{}(): a Python ILogger subclass needs TensorRT 8.0 or newer; "
                        "use trt.Logger on {}".format(who, ".".join(map(str, version))))


def emit(logger, severity, message):
    """Deliver one message the way the C++ core does: through ILogger.log."""
    logger.log(severity, message)
