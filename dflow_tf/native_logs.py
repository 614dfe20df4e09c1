"""Keeps TensorFlow's native (C++) log lines off the console of the command-line tools.

TensorFlow 2.21 logs through absl before `absl::InitializeLog()` is called, which writes every
message to stderr whatever TF_CPP_MIN_LOG_LEVEL says (tensorflow/tensorflow#100442): "Could not
find cuda drivers on your machine", "oneDNN custom operations are on", "failed call to cuInit",
the CPU-feature notice, and so on (and FFmpeg's lines from OpenCV's video reader). No Python
API reaches that logger, so the command lines filter the process's stderr file descriptor
instead: `hide_native_logs()` points fd 2 at a pipe that a thread copies to the real stderr,
leaving out lines in absl's, TensorFlow's and FFmpeg's native formats (and the continuation
lines of such a message). Everything else, Python tracebacks and
the project's own lines included, passes unchanged and in order; fatal native lines ("F...")
pass too.

`--verbose` on any command line, or DFLOW_VERBOSE=1, keeps TensorFlow's lines (the filter is not
installed and TensorFlow's Python loggers keep their level).
"""
import atexit
import os
import re
import sys
import threading

VERBOSE_VARIABLE = "DFLOW_VERBOSE"

# absl: "I0000 00:00:1796114566.887450    2343 cudart_stub.cc:31] ..."; TF's older format:
# "2026-12-01 08:40:00.123456: I tensorflow/core/...cc:42] ...".
_NATIVE_LINE = re.compile(
    rb"^(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\]"
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] [^ \]]+:\d+\]"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    # FFmpeg (OpenCV's video decoder) logs "[h264 @ 0x55e77bf7dcc0] A non-intra slice in an IDR NAL
    # unit." for recoverable stream quirks of ordinary phone videos; unreadable clips are reported
    # by the project's own readers.
    rb"|\[[\w-]+ @ 0x[0-9a-f]+\] )")
# Lines that continue a native message (which absl writes in one piece, newlines included).
_CONTINUATION = re.compile(rb"^(?:[ \t]|To enable the following instructions:)")

_installed = None  # (saved stderr fd, reader thread) once installed


def verbose_requested(argv=None):
    """True when --verbose is among the arguments or DFLOW_VERBOSE is set to a true value."""
    argv = sys.argv[1:] if argv is None else argv
    return "--verbose" in argv or os.environ.get(VERBOSE_VARIABLE, "").lower() in ("1", "true", "yes")


def add_verbose_argument(parser):
    """Adds --verbose (TensorFlow's own log lines kept) to an argparse command line."""
    parser.add_argument("--verbose", action="store_true",
                        help=f"keep TensorFlow's own log lines on the console (or {VERBOSE_VARIABLE}=1)")


def filter_native_lines(lines, dropping=False):
    """Splits `lines` (bytes, each with its newline) into the ones to keep.

    Returns (kept lines, whether the last line was part of a dropped native message), so that a
    stream can be filtered chunk by chunk.
    """
    kept = []
    for line in lines:
        if _NATIVE_LINE.match(line):
            dropping = not line.startswith(b"F")
        elif not (dropping and _CONTINUATION.match(line)):
            dropping = False
        if not dropping:
            kept.append(line)
    return kept, dropping


def hide_native_logs(argv=None):
    """Installs the stderr filter (once per process) unless verbose output was asked for.

    Call it first thing in a command line's entry point, before TensorFlow is imported. Also
    lowers TensorFlow's and absl's Python loggers to errors. Returns True when installed.
    """
    global _installed
    if _installed is not None:
        return True
    if verbose_requested(argv):
        return False
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # still honoured by parts of TensorFlow
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    thread = threading.Thread(target=_copy_filtered, args=(read_end, saved), daemon=True,
                              name="dflow-native-log-filter")
    thread.start()
    _installed = (saved, thread)
    atexit.register(_restore)
    _quiet_python_loggers()
    return True


def _copy_filtered(read_end, out_fd):
    pending, dropping = b"", False
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        lines = (pending + chunk).splitlines(keepends=True)
        pending = lines.pop() if not lines[-1].endswith(b"\n") else b""
        kept, dropping = filter_native_lines(lines, dropping)
        if kept:
            os.write(out_fd, b"".join(kept))
    if pending:
        kept, _ = filter_native_lines([pending], dropping)
        os.write(out_fd, b"".join(kept))
    os.close(read_end)


def _restore():
    """At exit: points fd 2 back at the real stderr and lets the thread copy what is left."""
    saved, thread = _installed
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os.dup2(saved, 2)  # closes the pipe's only write end: the thread reads to its end and stops
    thread.join(timeout=5)


def _quiet_python_loggers():
    """TensorFlow's and absl's Python-side loggers: errors only (they are imported lazily)."""
    import logging
    for name in ("tensorflow", "absl", "tensorflow_datasets", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
