"""Shared helpers for the bench/ scripts: timing, peak memory in a subprocess, table printing."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def median_time(fn, repeats, warmup=2):
    """Median wall time in seconds of `fn()` over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rss_mib():
    """(current RSS, peak RSS) of this process in MiB, from /proc/self/status."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def run_isolated(script, case, extra_args=()):
    """Runs `python script [extra_args] --case JSON` in a fresh process (so peak RSS is per case).

    Returns the JSON object the case printed on its last line of stdout.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, script, *extra_args, "--case", json.dumps(case)]
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"bench case {case} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def print_table(headers, rows):
    """Prints a plain-text table with right-aligned columns."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def run_cases(doc, script, run_case, cases, repeats=5, quick_cases=None):
    """The command line shared by the case-based benches: --repeats N, --quick, and the hidden
    --case JSON with which each case runs in its own process (run_isolated).

    In a --case child: runs `run_case(case, repeats)`, prints its JSON and returns None. Otherwise
    runs every case (or `quick_cases` with --quick) isolated and returns (results, repeats).
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=repeats)
    if quick_cases is not None:
        parser.add_argument("--quick", action="store_true", help="only: " + ", ".join(map(json.dumps, quick_cases)))
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case), args.repeats)))
        return None
    results = []
    for case in (quick_cases if getattr(args, "quick", False) else cases):
        results.append(run_isolated(script, case, ["--repeats", str(args.repeats)]))
        print("done:", case, file=sys.stderr, flush=True)
    return results, args.repeats
