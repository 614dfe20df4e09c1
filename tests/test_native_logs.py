"""The stderr filter of the command lines (dflow_tf.native_logs): known native lines go, the rest
stays, in order; --verbose / DFLOW_VERBOSE keep everything."""
import os
import subprocess
import sys

import pytest

from dflow_tf import native_logs

# Run again by CI with oneDNN off and with its AVX2 kernels (pytest.ini): the native lines differ.
pytestmark = pytest.mark.backend

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NATIVE = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1796114566.887450    2343 cudart_stub.cc:31] Could not find cuda drivers on your machine.\n",
    b"E0000 00:00:1796116376.396025   21351 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: x\n",
    b"W1201 08:40:00.123456   12 local_rendezvous.cc:412] Local rendezvous is aborting\n",
    b"2026-12-01 08:40:00.123456: I tensorflow/core/platform/cpu_feature_guard.cc:182] optimized\n",
    b"[h264 @ 0x55e77bf7dcc0] A non-intra slice in an IDR NAL unit.\n",
]
CONTINUED = b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.\n"
OWN = [b"[census] step 2/2 loss/census=3.3\n", b"Traceback (most recent call last):\n",
       b'  File "x.py", line 1, in <module>\n', b"error: gin file not found: nope.gin\n"]


def test_filter_drops_native_lines_and_their_continuations_only():
    lines = [NATIVE[0], NATIVE[1], OWN[0], NATIVE[4], CONTINUED, OWN[1], OWN[2], NATIVE[2],
             NATIVE[3], NATIVE[5], OWN[3]]
    kept, dropping = native_logs.filter_native_lines(lines)
    assert kept == [OWN[0], OWN[1], OWN[2], OWN[3]]
    assert dropping is False
    # A fatal native line is kept; an indented line after one of our lines is ours.
    fatal = b"F0000 00:00:1.0  1 op_kernel.cc:1] Check failed\n"
    assert native_logs.filter_native_lines([fatal, b"   detail\n"])[0] == [fatal, b"   detail\n"]
    # State carries across chunks: a continuation at the start of the next chunk is dropped.
    kept, dropping = native_logs.filter_native_lines([OWN[0], NATIVE[4]])
    assert kept == [OWN[0]] and dropping
    assert native_logs.filter_native_lines([CONTINUED, OWN[3]], dropping)[0] == [OWN[3]]


SCRIPT = rf"""
import os, sys
from dflow_tf import native_logs
native_logs.hide_native_logs()
import tensorflow as tf
tf.constant(1.0) + 1.0
os.write(2, {NATIVE[1] + NATIVE[4] + CONTINUED!r})
print("own line", file=sys.stderr)
raise SystemExit("error: last words")
"""


def _run(env_extra, *args):
    env = dict(os.environ, PYTHONPATH=REPO, **env_extra)
    env.pop(native_logs.VERBOSE_VARIABLE, None)
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, env=env,
                          timeout=120)


def test_process_stderr_keeps_own_lines_and_exit_message_without_tensorflows():
    out = _run({})
    assert out.returncode == 1
    err = out.stderr.decode()
    assert err.splitlines()[-2:] == ["own line", "error: last words"]
    assert not any(native_logs._NATIVE_LINE.match(line.encode()) for line in err.splitlines()), err
    assert "To enable the following instructions" not in err


def test_verbose_keeps_tensorflows_lines():
    for env, args in (({native_logs.VERBOSE_VARIABLE: "1"}, ()), ({}, ("--verbose",))):
        err = _run(env, *args).stderr.decode()
        assert "Could not find cuda drivers" in err and "own line" in err
