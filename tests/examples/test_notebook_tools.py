"""dev/notebooks.py: notebooks cannot drift from their scripts, and run in the venv's Python."""

from __future__ import annotations

import os
import shutil
import sys

import nbformat
import pytest

from conftest import ROOT


def test_every_example_script_has_its_notebook_and_they_match(notebooks_module):
    scripts = notebooks_module.scripts()
    assert scripts, "no examples/NN_*.py found"
    assert notebooks_module.check() == []


def test_check_names_a_missing_a_stale_and_an_orphan_notebook(notebooks_module, tmp_path):
    for name in ("01_quick_start.py", "01_quick_start.ipynb"):
        shutil.copy(ROOT / "examples" / name, tmp_path / name)
    assert notebooks_module.check(tmp_path) == []

    script = tmp_path / "01_quick_start.py"
    script.write_text(script.read_text() + "\n# %%\nprint('a new cell')\n")
    (tmp_path / "02_new.py").write_text("# %%\nprint(2)\n")
    (tmp_path / "03_orphan.ipynb").write_text("{}")
    problems = notebooks_module.check(tmp_path)
    assert len(problems) == 3, problems
    assert "01_quick_start.ipynb differs from jupytext's conversion" in problems[0]
    assert "02_new.ipynb is missing" in problems[1]
    assert "03_orphan.ipynb has no script" in problems[2]
    assert all("dev/notebooks.py sync" in problem for problem in problems[:2])

    assert notebooks_module.sync(tmp_path) == [
        tmp_path / "01_quick_start.ipynb",
        tmp_path / "02_new.ipynb",
    ]
    assert notebooks_module.check(tmp_path) == [problems[2]]
    assert notebooks_module.sync(tmp_path) == []  # nothing left to write


def test_execute_runs_the_venvs_python_small_and_outside_the_checkout(notebooks_module, tmp_path):
    source = tmp_path / "probe.ipynb"
    code = (
        "import os, sys\n"
        "print(sys.executable, os.environ['TRAINKIT_EXAMPLES_SMALL'], os.getcwd(),"
        " os.environ['TRAINKIT_EXAMPLES_OUT'], os.getpid())"
    )
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), source)
    out_dir, work_dir = tmp_path / "executed", tmp_path / "work"
    timings = notebooks_module.execute([source], out_dir, small=True, work_dir=work_dir)

    executed = nbformat.read(out_dir / "probe.ipynb", as_version=4)
    executable, small, cwd, out, pid = executed.cells[0].outputs[0].text.split()
    assert executable == sys.executable
    assert small == "1"
    assert cwd == out == str(work_dir / "probe")
    with pytest.raises(ProcessLookupError):  # the kernel was shut down and reaped
        os.kill(int(pid), 0)
    assert timings["probe.ipynb"]["kernel_cpu_s"] > 0


def test_a_failing_notebook_fails_only_the_tests_that_read_it(notebooks_module, tmp_path):
    # The path of the session fixture `executed_notebooks`: execute_each, then read_executed.
    from notebook_helpers import output_text, read_executed

    cells = {
        "01_passes": "print('the first notebook ran')",
        "02_raises": "raise ValueError('a poisoned cell')",
        "03_passes": "print('the third notebook ran')",
    }
    sources = []
    for name, code in cells.items():
        sources.append(tmp_path / f"{name}.ipynb")
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
        nbformat.write(notebook, sources[-1])
    out_dir, lines = tmp_path / "executed", []
    failures = notebooks_module.execute_each(
        sources, out_dir, work_dir=tmp_path / "work", workers=2, log=lines.append
    )

    assert list(failures) == ["02_raises.ipynb"]
    assert "ValueError" in failures["02_raises.ipynb"]
    assert "a poisoned cell" in failures["02_raises.ipynb"]
    assert "\x1b[" not in failures["02_raises.ipynb"]  # the traceback without its colours
    assert notebooks_module.read_failures(out_dir) == failures  # recorded for the tests
    assert sorted(line.split(":")[0] for line in lines) == [
        "executed 01_passes.ipynb",
        "executed 03_passes.ipynb",
    ]
    for name, which in (("01_passes", "first"), ("03_passes", "third")):  # read, no error
        assert f"the {which} notebook ran" in output_text(read_executed(out_dir, name))
    with pytest.raises(pytest.fail.Exception, match="02_raises raised when it was executed"):
        read_executed(out_dir, "02_raises")
    assert (out_dir / "02_raises.ipynb").exists()  # the partly executed copy, for the site


NOISE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796522192.369854   11197 port.cc:153] oneDNN custom operations are on. "
    "To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n"
)
KEPT = "W0000 00:00:1796522192.5   11197 op_kernel.cc:1857] a real TensorFlow warning\n"


def test_tensorflows_startup_info_lines_are_dropped_and_warnings_kept(notebooks_module):
    # As the kernel shows them: TensorFlow's lines (written to fd 2) among Python's stderr.
    python_warning = "/tmp/ipykernel_1/1.py:5: UserWarning: a Python warning\n  warn()\n"
    outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=NOISE),
        nbformat.v4.new_output("stream", name="stdout", text="printed\n"),
        nbformat.v4.new_output("stream", name="stderr", text=NOISE + KEPT + python_warning),
    ]
    cell = nbformat.v4.new_code_cell("import tensorflow", outputs=outputs)
    notebook = nbformat.v4.new_notebook(cells=[cell])

    assert notebooks_module.drop_startup_noise(notebook) == 4
    assert [(o.name, o.text) for o in notebook.cells[0].outputs] == [
        ("stdout", "printed\n"),
        ("stderr", KEPT + python_warning),
    ]


def test_the_executed_examples_show_no_tensorflow_startup_lines(executed_notebooks):
    from notebook_helpers import output_text

    for path in sorted(executed_notebooks.glob("*.ipynb")):
        text = output_text(nbformat.read(path, as_version=4))
        assert "absl::InitializeLog" not in text, path.name
        assert "oneDNN custom operations are on" not in text, path.name


def test_kernel_managers_built_at_once_read_a_whole_kernelspec(notebooks_module, tmp_path):
    """Notebooks run two at a time: one kernel manager must never read the spec file
    while another is rewriting it (that failed a notebook with JSONDecodeError)."""
    import threading

    errors = []

    def build_and_read():
        for _ in range(100):
            try:
                notebooks_module._kernel_manager(tmp_path).kernel_spec
            except Exception as error:  # any failure is the finding
                errors.append(repr(error))

    threads = [threading.Thread(target=build_and_read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
