"""Benchmark: import_events into PostgreSQL (COPY path) for the YOOCHOOSE week and a generated big file.

    .venv/bin/python bench/tracking_import.py [--rows 10000000] [--database-url URL]

Uses its own database (default shop_bench_tracking, emptied first). Each import runs in a child
process (the import_events command), which reports its own peak RSS (VmHWM), its CPU seconds and
those of its PostgreSQL backend (the machine is shared: wall-clock figures are only comparable at
the same load, so the load average is printed with each); the baseline of a bare django.setup() of
this project (torch and all apps imported) is printed for comparison. Prints rows, seconds,
events/s, the seconds per stage and peak RSS for a first import and for an idempotent re-import.
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _django import DEFAULT_URL, ROOT, reset_tracking, setup  # noqa: E402

YOOCHOOSE = ROOT.parent / "shared" / "data" / "yoochoose-week" / "yoochoose-clicks-week.dat"


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """A YOOCHOOSE-format file: sessions of geometric length (mean 4), Zipf-like items over 50k
    ids, 30 days of traffic, written in chunks (flat memory)."""
    rng = np.random.default_rng(seed)
    start = int(np.datetime64("2024-01-01T00:00:00", "ms").astype(np.int64))
    written, session = 0, 1
    with open(path, "w") as f:
        while written < rows:
            n = min(1_000_000, rows - written)
            lengths = rng.geometric(0.25, size=n // 3 + 10)
            lengths = lengths[np.cumsum(lengths) <= n]
            if lengths.sum() < n:
                lengths = np.append(lengths, n - lengths.sum())
            sess = np.repeat(np.arange(session, session + len(lengths)), lengths)
            session += len(lengths)
            first = start + (written + np.arange(n)) * (30 * 86400_000 // rows)
            t = first + rng.integers(0, 120_000, size=n)
            items = 214_000_000 + np.minimum(rng.zipf(1.3, size=n), 50_000)
            ts = np.datetime_as_string(t.astype("datetime64[ms]"), unit="ms")
            lines = np.char.add(np.char.add(np.char.add(sess.astype(str), ","), np.char.add(ts, "Z,")),
                                np.char.add(items.astype(str), ",0\n"))
            f.write("".join(lines.tolist()))
            written += n


CHILD = """
import os, resource, sys, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
sys.path.insert(0, {root!r})
django.setup()
from django.core.management import call_command
from django.db import connection

with connection.cursor() as cursor:
    cursor.execute("SELECT pg_backend_pid()")
    backend = cursor.fetchone()[0]


def backend_cpu():
    # utime + stime of the PostgreSQL backend serving this connection (same machine)
    try:
        fields = open(f"/proc/{{backend}}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


load, own, pg = os.getloadavg(), resource.getrusage(resource.RUSAGE_SELF), backend_cpu()
call_command("import_events", {path!r}, "--no-progress", verbosity=2)
after = resource.getrusage(resource.RUSAGE_SELF)
own = after.ru_utime + after.ru_stime - own.ru_utime - own.ru_stime
print(f"cpu {{own:.2f}} {{backend_cpu() - pg:.2f}} load {{load[0]:.2f}} {{os.getloadavg()[0]:.2f}}")
# VmHWM is this process's own peak RSS (ru_maxrss of a child can include its parent's, from fork).
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(f"peak-rss-kib {{hwm}}")
"""


def run_import(path: Path, database_url: str) -> tuple[str, float, float]:
    """Import in a child process; returns its report (summary, stage seconds, CPU seconds of the
    importing process and of its PostgreSQL backend, load averages), wall seconds and peak RSS."""
    env = dict(os.environ, DATABASE_URL=database_url)
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), path=str(path))],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"import failed:\n{proc.stdout}")
    lines = proc.stdout.strip().splitlines()
    rss = int(lines[-1].split()[1]) / 1024
    _, own, pg, _, before, after = lines[-2].split()
    report = "\n    ".join(lines[-4:-2] + [
        f"CPU seconds: import process {own}, PostgreSQL backend {pg}; load average {before} before, {after} after"
    ])
    return report, seconds, rss


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--file", help="A generated file to reuse (made when missing).")
    parser.add_argument("--cases", default="week,big", help="Which imports: week, big or both (week,big).")
    args = parser.parse_args()
    wanted = set(args.cases.split(","))
    setup(args.database_url)
    reset_tracking()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    base = subprocess.run(
        [sys.executable, "-c", "import os, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shop.settings'); "
         "django.setup(); print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"],
        env=dict(os.environ, DATABASE_URL=args.database_url), stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    print(f"baseline peak RSS of django.setup(): {int(base.stdout.split()[-1]) / 1024:.0f} MiB")
    cases = []
    if "week" in wanted:
        if YOOCHOOSE.is_file():
            cases.append(("yoochoose-week", YOOCHOOSE))
        else:
            print(f"skipping the YOOCHOOSE week: {YOOCHOOSE} not found")
    if "big" in wanted:
        big = Path(args.file or ROOT / "var" / f"bench-clicks-{args.rows}.dat")
        if not big.is_file():
            big.parent.mkdir(parents=True, exist_ok=True)
            t = time.perf_counter()
            generate(big, args.rows)
            print(f"generated {big} ({args.rows:,} rows, {big.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s")
        cases.append((f"generated {args.rows:,}", big))
    for name, path in cases:
        for attempt in ("first import", "re-import"):
            summary, seconds, rss = run_import(path, args.database_url)
            print(f"[{name}] {attempt}: {seconds:.1f} s wall, peak RSS {rss:.0f} MiB\n    {summary}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
