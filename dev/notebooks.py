"""The example notebooks: generate them from their scripts, check for drift, execute them.

Each example is a jupytext "percent" script `examples/NN_name.py` (the source, runnable
with `python examples/NN_name.py`) and the notebook `examples/NN_name.ipynb` generated
from it, committed without outputs.

    python dev/notebooks.py sync [SCRIPT...]  # regenerate the notebooks from their scripts
    python dev/notebooks.py check             # exit 1 and name the drifted ones
    python dev/notebooks.py execute OUT_DIR   # run them (small sizes) into OUT_DIR

`execute()` starts each kernel with the Python running this module (the venv's), through
a kernelspec written to a temporary folder, so neither a user's own `python3` kernelspec
nor a missing registration on a fresh clone decides which interpreter runs them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PATTERN = "[0-9][0-9]_*.py"
KERNEL_NAME = "trainkit-examples"
SMALL_VARIABLE = "TRAINKIT_EXAMPLES_SMALL"  # "1": each example uses its small sizes
OUT_VARIABLE = "TRAINKIT_EXAMPLES_OUT"  # where an example writes its run folders
FAILURES_FILE = "failures.json"  # execute_each's record of the notebooks that raised
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the colours of IPython's tracebacks
# TensorFlow's start-up lines that TF_CPP_MIN_LOG_LEVEL=2 no longer silences (TF 2.16+ logs
# them through absl before absl::InitializeLog, to the kernel's fd 2, which ipykernel
# shows in the cell): absl's banner about it and INFO lines (`I0000 00:00:... file.cc:N]`,
# such as "oneDNN custom operations are on"). Warnings (`W...`) and errors stay.
_STARTUP_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    r"STDERR|I\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\] .*)\n?",
    re.MULTILINE,
)


def scripts(examples: Path = EXAMPLES) -> list[Path]:
    """Every example script `NN_name.py`, in order."""
    return sorted(examples.glob(PATTERN))


def notebook_path(script: Path) -> Path:
    return script.with_suffix(".ipynb")


def notebook_text(script: Path) -> str:
    """The notebook jupytext makes of `script`, outputs empty, as `sync` writes it.

    Cell ids are numbered (`cell-0`, `cell-1`, ...) rather than jupytext's random ones,
    so the same script always gives the same bytes.
    """
    notebook = jupytext.read(script, fmt="py:percent")
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index}"
    return jupytext.writes(notebook, fmt="ipynb")


def sync(examples: Path = EXAMPLES, only: Iterable[Path] = ()) -> list[Path]:
    """Regenerate each notebook whose text differs from its script's; returns those written.

    Args:
        examples: the folder of `NN_name.py` scripts.
        only: these scripts (or their notebooks) only; default every script.
    """
    wanted = {Path(path).resolve().with_suffix(".py") for path in only}
    written = []
    for script in scripts(examples):
        if wanted and script.resolve() not in wanted:
            continue
        text = notebook_text(script)
        target = notebook_path(script)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            written.append(target)
    return written


def check(examples: Path = EXAMPLES) -> list[str]:
    """Problems with the committed notebooks, one sentence each (empty: all in sync)."""
    problems = []
    for script in scripts(examples):
        target = notebook_path(script)
        name = target.relative_to(examples.parent) if examples == EXAMPLES else target.name
        if not target.exists():
            problems.append(f"{name} is missing: run `python dev/notebooks.py sync`.")
        elif target.read_text(encoding="utf-8") != notebook_text(script):
            problems.append(
                f"{name} differs from jupytext's conversion of {script.name} (edited by hand, "
                "saved with outputs, or the script changed): run `python dev/notebooks.py sync`."
            )
    for target in sorted(examples.glob("[0-9][0-9]_*.ipynb")):
        if not target.with_suffix(".py").exists():
            problems.append(f"{target.name} has no script {target.with_suffix('.py').name}.")
    return problems


def _kernel_manager(kernel_dir: Path):  # -> jupyter_client.KernelManager
    """A kernel manager whose only kernelspec runs `sys.executable -m ipykernel_launcher`."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec_dir = kernel_dir / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "trainkit examples",
        "language": "python",
    }
    # Written whole, then renamed: notebooks run two at a time, and a kernel manager
    # reading the spec while another truncates it failed with JSONDecodeError.
    partial = spec_dir / f"kernel.json.{os.getpid()}-{threading.get_ident()}.tmp"
    partial.write_text(json.dumps(spec), encoding="utf-8")
    os.replace(partial, spec_dir / "kernel.json")
    specs = KernelSpecManager(kernel_dirs=[str(kernel_dir)], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)


def execute(
    paths: Iterable[Path],
    out_dir: Path,
    *,
    small: bool = True,
    timeout: int = 300,
    work_dir: Path | None = None,
) -> dict[str, dict[str, float]]:
    """Execute notebooks with nbclient into `out_dir/<name>.ipynb`, outputs embedded.

    Each notebook runs in its own kernel (the Python running this module), with the
    working directory and `TRAINKIT_EXAMPLES_OUT` set to a fresh folder under `work_dir`
    (a temporary folder by default) so nothing is written into the checkout, and with
    `TRAINKIT_EXAMPLES_SMALL=1` when `small`. TensorFlow's start-up INFO lines, which
    `TF_CPP_MIN_LOG_LEVEL=2` does not silence, are dropped from the copies
    (`drop_startup_noise`); its warnings and errors, and Python's, are kept.

    Args:
        paths: the `.ipynb` files to run.
        out_dir: receives the executed copies (created if needed).
        small: run each example at its small sizes.
        timeout: seconds allowed per cell.
        work_dir: parent of the per-notebook working folders.

    Returns:
        per notebook name, `wall_s` (seconds it took) and `kernel_cpu_s` (CPU seconds its
        kernel used, user + system, read from /proc: on a busy machine a steadier measure
        than wall time; NaN where /proc is missing).

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised; the message names the
            notebook, and the partly executed copy is still written to `out_dir`.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="trainkit-notebooks-"))
    timings = {}
    for path in map(Path, paths):
        run_dir = work_dir / path.stem
        run_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, OUT_VARIABLE: str(run_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
        env[SMALL_VARIABLE] = "1" if small else "0"
        # ipykernel shows what is written to fd 2 (TensorFlow's C++ logs) in the cells, but
        # not under pytest: run the tests' kernels as a reader's, so they see the same.
        env.pop("PYTEST_CURRENT_TEST", None)
        notebook = nbformat.read(path, as_version=4)
        kernel = _kernel_manager(work_dir / "kernels")
        client = NotebookClient(
            notebook, km=kernel, timeout=timeout, resources={"metadata": {"path": str(run_dir)}}
        )
        start, cpu = time.perf_counter(), math.nan
        try:
            client.execute(env=env, cwd=str(run_dir))
        except CellExecutionError as error:
            raise CellExecutionError(f"{path.name}: {error}", error.ename, error.evalue) from None
        finally:
            # nbclient leaves a kernel it was handed running: stop it (and reap it) here.
            if kernel.has_kernel:
                cpu = _cpu_seconds(getattr(kernel.provisioner, "pid", None))
                kernel.shutdown_kernel(now=False)
            drop_startup_noise(notebook)
            nbformat.write(notebook, out_dir / path.name)
            timings[path.name] = {"wall_s": time.perf_counter() - start, "kernel_cpu_s": cpu}
    return timings


def drop_startup_noise(notebook: nbformat.NotebookNode) -> int:
    """Remove TensorFlow's start-up INFO lines from the stderr outputs; returns how many.

    A stderr output left empty is removed. Everything else a cell wrote stays.
    """
    dropped = 0
    for cell in notebook.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stderr":
                output.text, count = _STARTUP_NOISE.subn("", output.text)
                dropped += count
                if not output.text:
                    continue
            kept.append(output)
        if cell.cell_type == "code":
            cell.outputs = kept
    return dropped


def execute_each(
    paths: Iterable[Path],
    out_dir: Path,
    *,
    small: bool = True,
    timeout: int = 300,
    work_dir: Path | None = None,
    workers: int = 1,
    log: Callable[[str], None] = print,
) -> dict[str, str]:
    """Execute each notebook as `execute` does, `workers` at a time, going on past failures.

    One notebook that raises does not stop the others: its error is recorded, its partly
    executed copy is still in `out_dir`, and `read_failures(out_dir)` gives it back, so a
    test of that notebook can fail with its error while the tests of the others run.

    Args:
        paths, out_dir, small, timeout, work_dir: as for `execute`.
        workers: notebooks run at once (each in its own kernel).
        log: receives one line per notebook that ran (its seconds and kernel CPU seconds).

    Returns:
        per notebook name (`NN_name.ipynb`) that raised, its error as text; also written
        to `out_dir/failures.json` (`{}` when every notebook ran).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def run(path: Path) -> tuple[str, str | None]:
        try:
            timing = execute([path], out_dir, small=small, timeout=timeout, work_dir=work_dir)
        except Exception as error:  # a cell raised, the kernel died, a cell timed out
            return path.name, _ANSI.sub("", f"{type(error).__name__}: {error}")
        seconds = timing[path.name]
        log(
            f"executed {path.name}: {seconds['wall_s']:.1f} s, "
            f"kernel CPU {seconds['kernel_cpu_s']:.1f} s"
        )
        return path.name, None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(run, map(Path, paths)))
    failures = {name: error for name, error in results if error is not None}
    (out_dir / FAILURES_FILE).write_text(json.dumps(failures, indent=1), encoding="utf-8")
    return failures


def read_failures(out_dir: Path) -> dict[str, str]:
    """The notebooks `execute_each` recorded as failed in `out_dir`, with their errors."""
    path = Path(out_dir) / FAILURES_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a running process (Linux's /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    synced = commands.add_parser("sync", help="regenerate examples/NN_*.ipynb from scripts")
    synced.add_argument("scripts", nargs="*", type=Path, help="default: every example")
    commands.add_parser("check", help="exit 1 if a notebook differs from its script")
    run = commands.add_parser("execute", help="execute the notebooks into OUT_DIR")
    run.add_argument("out_dir", type=Path)
    run.add_argument("notebooks", nargs="*", type=Path, help="default: every example")
    run.add_argument("--full", action="store_true", help="full sizes instead of small ones")
    run.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    if args.command == "sync":
        for path in sync(only=args.scripts):
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    if args.command == "check":
        problems = check()
        print("\n".join(problems) or "every notebook matches its script")
        return 1 if problems else 0
    notebooks = args.notebooks or [notebook_path(script) for script in scripts()]
    timings = execute(notebooks, args.out_dir, small=not args.full, timeout=args.timeout)
    for name, timing in timings.items():
        print(
            f"{name}: {timing['wall_s']:.1f} s, kernel CPU {timing['kernel_cpu_s']:.1f} s "
            f"-> {args.out_dir / name}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
