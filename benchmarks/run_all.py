"""Run the benchmark suite and print one table; `--write` records it in benchmarks/README.md.

Every benchmark runs in a subprocess of its own: TensorFlow's thread settings are fixed
once its runtime starts (the overlap bench sets them), and a peak-RSS figure must not
include memory another bench left behind. A child calls its module's `rows(quick)` and
hands the rows back as JSON; a bench that fails is reported and the others still run.

Modes: the default is quick (a few minutes on 2 cores); `--full` runs every bench at its
full size (the memory bench's 8 GB file; longer). Benches whose module is missing are
skipped and named.

Run: python benchmarks/run_all.py [--full] [--write | --only overlap train_loop]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import Row, table

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
BEGIN, END = "<!-- run_all:begin -->", "<!-- run_all:end -->"

# In table order: the measurement list; each module with the keyword arguments its
# `rows(quick, **options)` takes. End to end runs twice: TensorFlow's default threads (one
# per core), and one intra-op + one inter-op thread, which decides who keeps a core free.
BENCHES: list[tuple[str, dict[str, Any]]] = [
    ("bench_loader", {}),
    ("bench_overlap", {}),
    ("bench_end_to_end", {}),
    ("bench_end_to_end", {"intra": 1, "inter": 1}),
    ("bench_memory", {}),
    ("bench_train_loop", {}),
    ("bench_store", {}),
    ("bench_run_health", {}),
]
CHILD_TIMEOUT_S = 3600


def run_child(module: str, quick: bool, options: dict[str, Any], out: str) -> None:
    """In the child process: `module.rows(quick, **options)` as JSON in `out`."""
    rows = importlib.import_module(module).rows(quick, **options)
    Path(out).write_text(json.dumps([dataclasses.asdict(row) for row in rows]))


def run_bench(module: str, quick: bool, options: dict[str, Any]) -> tuple[list[Row], str | None]:
    """`module`'s rows from a subprocess, and None; or no rows and what went wrong."""
    with tempfile.TemporaryDirectory(prefix="trainkit-run-all-") as folder:
        out = os.path.join(folder, "rows.json")
        command = [
            sys.executable, str(HERE / "run_all.py"), "--child", module,
            "--options", json.dumps(options), "--out", out,
        ]  # fmt: skip
        if quick:
            command.append("--quick")
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, env=environment,
                timeout=CHILD_TIMEOUT_S, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return [], f"{module} ran past {CHILD_TIMEOUT_S} s and was stopped"
        if done.returncode != 0 or not os.path.exists(out):
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            return [], f"{module} failed (exit status {done.returncode}):\n{tail}"
        return [Row(**row) for row in json.loads(Path(out).read_text())], None


def selected(only: list[str] | None) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """The benches to run (their modules exist) and the modules skipped because they do not."""
    wanted = BENCHES
    if only:
        names = {name if name.startswith("bench_") else f"bench_{name}" for name in only}
        known = dict.fromkeys(module for module, _ in BENCHES)
        unknown = sorted(names - set(known))
        if unknown:
            raise SystemExit(
                f"Unknown benchmark(s) {unknown}; choose from "
                f"{[name.removeprefix('bench_') for name in known]}."
            )
        wanted = [bench for bench in BENCHES if bench[0] in names]
    exists = {module: (HERE / f"{module}.py").exists() for module, _ in wanted}
    present = [bench for bench in wanted if exists[bench[0]]]
    return present, [module for module, found in exists.items() if not found]


def machine() -> str:
    """CPU model, cores, RAM, versions: what a figure needs beside it to mean anything."""
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kb = int(line.split()[1])
    cores = len(os.sched_getaffinity(0))
    return (
        f"{cpu}, {cores} cores, {memory_kb / 2**20:.1f} GiB RAM; Python "
        f"{platform.python_version()}, TensorFlow {version('tensorflow', 'tensorflow-cpu')}, "
        f"Keras {version('keras')}, NumPy {version('numpy')}"
    )


def version(*distributions: str) -> str:
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def record(rows: list[Row], notes: list[str], quick: bool, seconds: float, load: str) -> str:
    """The Markdown block written between the README's markers."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode = "default (quick) mode" if quick else "`--full` mode"
    lines = [
        f"Recorded {now} by `python benchmarks/run_all.py` in {mode}, {seconds:.0f} s.",
        f"Machine: {machine()}. Load average (1 min) {load}.",
        "",
        table(rows),
    ]
    lines += [f"\n{note}" for note in notes]
    return "\n".join(lines)


def write_readme(block: str) -> None:
    text = README.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{README} lacks the markers {BEGIN} and {END}: add them, then rerun.")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    README.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}")


def load_average() -> float:
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="full sizes (longer; 8 GB file)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="e.g. overlap train_loop")
    parser.add_argument("--write", action="store_true", help=f"record the table in {README}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(args.child, args.quick, json.loads(args.options), args.out)

    if args.write and args.only:
        parser.error("--write records the whole suite's table: drop --only to write it")
    quick = not args.full
    benches, missing = selected(args.only)
    notes = [f"Not run: {name}.py does not exist yet." for name in missing]
    rows: list[Row] = []
    start, load_before = time.perf_counter(), load_average()
    for module, options in benches:
        began = time.perf_counter()
        print(f"{module} {options or ''} ...", end=" ", flush=True, file=sys.stderr)
        bench_rows, failure = run_bench(module, quick, options)
        print(f"{time.perf_counter() - began:.0f} s", file=sys.stderr)
        rows += bench_rows
        if failure:
            print(failure, file=sys.stderr)
            notes.append(f"Failed: {failure.splitlines()[0].rstrip(':')}.")
    seconds = time.perf_counter() - start
    load = f"{load_before:.1f} at the start, {load_average():.1f} at the end"
    block = record(rows, notes, quick, seconds, load)
    print(block)
    if args.write:
        write_readme(block)
        print(f"\nWritten to {README}.", file=sys.stderr)


if __name__ == "__main__":
    main()
