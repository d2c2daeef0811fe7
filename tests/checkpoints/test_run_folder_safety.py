"""Run folders that cannot be turned against the user: no symlink followed, no name
escaping its folder, every write error wrapped with nothing half-written left."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
from matplotlib.figure import Figure

from trainkit import DataGenerator, TrainGenerator
from trainkit.callbacks import Callback
from trainkit.checkpoints import (
    CheckpointWriteError,
    atomic,
    complete_checkpoints,
    create_run_folder,
)
from trainkit.checkpoints.atomic import open_append, write_folder, write_text
from trainkit.reports import MetricsLog, ProvenanceLog, plot_history, render_report

OLD_TEMP_NAMES = (
    "metrics.csv.tmp",
    "provenance.jsonl.tmp",
    "report.txt.tmp",
    "history.png.tmp.png",
    "report.png.tmp.png",
)
RNG = np.random.default_rng(0)
X = RNG.random((24, 4), dtype=np.float32)
Y = (X.sum(axis=1) > 2).astype("float32")


def model():
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    net.compile(keras.optimizers.SGD(0.05), "mse")
    return net


def trainer(logs_dir, **kwargs):
    datagen = DataGenerator(data=X[:16], labels=Y[:16], batch_size=8, shuffle=True, seed=0)
    val_datagen = DataGenerator(data=X[16:], labels=Y[16:], batch_size=8)
    kwargs.setdefault("epochs", 1)
    return TrainGenerator(
        model(), datagen, val_datagen, logs_dir=str(logs_dir), iter_verbosity=0, **kwargs
    )


def plant(folder, name, target):
    link = os.path.join(folder, name)
    os.symlink(target, link)
    return link


def put(folder, text):
    Path(folder, "model.keras").write_text(text)


def leftovers(folder):
    """Temporary files or folders trainkit might have left in `folder`."""
    return [n for n in os.listdir(folder) if n.startswith((".tmp-", ".old-")) or ".tmp" in n]


# ------------------------------------------------------------------ symlinks


def test_planted_temp_symlinks_leave_their_targets_untouched_through_train_and_resume(
    tmp_path,
):
    victim = tmp_path / "precious.txt"
    victim.write_text("do not touch\n")
    os.utime(victim, (1_000_000_000, 1_000_000_000))
    logs = tmp_path / "logs"
    first = trainer(logs, epochs=1)
    first.train()
    for name in OLD_TEMP_NAMES:
        plant(first.run_dir, name, str(victim))
    resumed = trainer(logs, epochs=2, resume=True)
    assert resumed.run_dir == first.run_dir
    resumed.train()
    assert victim.read_text() == "do not touch\n"
    assert os.stat(victim).st_mtime == 1_000_000_000
    names = os.listdir(first.run_dir)
    assert {"metrics.csv", "provenance.jsonl", "report.txt", "report.png", "history.png"} <= set(
        names
    )
    assert [n for n in leftovers(first.run_dir) if n not in OLD_TEMP_NAMES] == []


def test_a_final_name_that_is_a_symlink_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    link = plant(tmp_path, "report.txt", str(victim))
    write_text(link, "new report")
    assert victim.read_text() == "keep"
    assert not os.path.islink(link) and Path(link).read_text() == "new report"


HEADER = "kind,epoch,iters_fit,batches_fit,set_name,loss\r\n"


@pytest.mark.parametrize("log", ["metrics", "provenance"])
def test_appending_through_a_symlink_is_refused_naming_the_file(tmp_path, log):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(HEADER.encode())  # a header that matches: only the append is left
    link = plant(tmp_path, "log.file", str(victim))
    with pytest.raises(CheckpointWriteError, match=r"log\.file' is a symbolic link.*Remove"):
        if log == "metrics":
            MetricsLog(link, ["loss"]).append("train", {}, {"loss": 1.0})
        else:
            ProvenanceLog(link).append({"iter": 1})
    assert victim.read_bytes() == HEADER.encode()


def test_truncating_the_logs_replaces_a_symlinked_log_without_touching_its_target(tmp_path):
    victim = tmp_path / "victim.jsonl"
    victim.write_text('{"iter":1}\n{"iter":2}\n')
    link = plant(tmp_path, "provenance.jsonl", str(victim))
    ProvenanceLog(link).truncate(1)
    assert victim.read_text() == '{"iter":1}\n{"iter":2}\n'
    assert Path(link).read_text() == '{"iter":1}\n' and not os.path.islink(link)


# ------------------------------------------------------------------ best models


@pytest.mark.parametrize("escape", ["../../ESCAPED", "/tmp/ESCAPED", "a/../../b"])
def test_a_metric_name_cannot_lead_a_best_model_outside_best_models_dir(tmp_path, escape):
    def score(y_true, y_pred):
        return float(-np.mean((y_true.ravel() - y_pred.ravel()) ** 2))

    score.__name__ = escape
    best = tmp_path / "deep" / "best"
    tg = trainer(
        tmp_path / "logs",
        eval_fn="predict",
        val_metrics=[score],
        key_metric=escape,
        max_is_best=True,
        best_models_dir=str(best),
    )
    tg.train()
    saved = os.listdir(best)
    assert len(saved) == 1 and "/" not in saved[0] and saved[0].startswith("M1__model__iter")
    assert sorted(os.listdir(best / saved[0])) == ["model.keras", "state.json"]
    assert sorted(os.listdir(tmp_path)) == ["deep", "logs"]
    assert os.listdir(tmp_path / "deep") == ["best"]
    assert not os.path.exists("/tmp/ESCAPED")


def test_a_best_model_folder_is_replaced_whole_or_not_at_all(tmp_path):
    path = str(tmp_path / "best" / "M1__model__iter4__loss=0.5")
    write_folder(path, lambda tmp: put(tmp, "old"))

    def fails(tmp):
        put(tmp, "half")
        raise OSError(28, "No space left on device")

    with pytest.raises(CheckpointWriteError, match="No space left on device"):
        write_folder(path, fails)
    assert Path(path, "model.keras").read_text() == "old"
    write_folder(path, lambda tmp: put(tmp, "new"))
    assert Path(path, "model.keras").read_text() == "new"
    assert leftovers(tmp_path / "best") == []


def test_a_best_model_folder_that_is_a_symlink_is_replaced_and_its_target_kept(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "mine.txt").write_text("mine")
    (tmp_path / "best").mkdir()
    path = plant(tmp_path / "best", "M1__model__iter4__loss=0.5", str(outside))
    write_folder(path, lambda tmp: put(tmp, "new"))
    assert os.listdir(outside) == ["mine.txt"]
    assert not os.path.islink(path) and os.listdir(path) == ["model.keras"]


# ------------------------------------------------------------------ callback state


class NumpyStateCallback(Callback):
    def __init__(self, extra=None):
        super().__init__()
        self.count, self.extra, self.loaded = 0, extra, None

    def on_train_iter_end(self, iter_in_batch, logs=None):
        self.count += 1

    def state_dict(self):
        state = {
            "count": np.int64(self.count),
            "best": np.float32(0.25),
            "flag": np.bool_(True),
            "zero_d": np.array(1.5),
            "nested": {"items": [np.int32(3), 4.0]},
        }
        if self.extra is not None:
            state["nested"]["bad"] = self.extra
        return state

    def load_state_dict(self, state):
        self.loaded = state


def test_numpy_scalars_in_callback_state_are_saved_as_numbers_and_restored(tmp_path):
    tg = trainer(tmp_path, callbacks=[NumpyStateCallback()])
    tg.train()
    callback = NumpyStateCallback()
    trainer(tmp_path, epochs=2, resume=True, callbacks=[callback])
    assert callback.loaded == {
        "count": 2,
        "best": 0.25,
        "flag": True,
        "zero_d": 1.5,
        "nested": {"items": [3, 4.0]},
    }
    assert type(callback.loaded["count"]) is int and type(callback.loaded["flag"]) is bool


@pytest.mark.parametrize(
    ("value", "kind"),
    [({1, 2}, "set"), (np.zeros(3), r"ndarray of shape \(3,\)"), ({5: "a"}, "dict key 5")],
)
def test_other_non_json_callback_state_is_refused_naming_callback_and_key(tmp_path, value, kind):
    tg = trainer(tmp_path, callbacks=[NumpyStateCallback(extra=value)], checkpoint_freq=None)
    tg.train()
    with pytest.raises(CheckpointWriteError) as caught:
        tg.checkpoint()
    message = str(caught.value)
    assert "NumpyStateCallback" in message and "state_dict()['nested']['bad']" in message
    assert kind.replace("\\", "") in message or kind in message
    assert complete_checkpoints(tg.run_dir) == [] and leftovers(tg.run_dir) == []


# ------------------------------------------------------------------ write faults


def fail_mid_write(self, file, **kwargs):
    file.write(b"\x89PNG partial")
    raise OSError(27, "File too large")


def draw(path):
    return plot_history(
        path,
        {"loss": [1.0, 0.5]},
        {"loss": [0.7]},
        val_batches=[2],
        epoch_batches=[2],
        key_metric="loss",
        best_index=0,
    )


def test_a_png_write_fault_is_wrapped_and_leaves_the_old_png_and_nothing_partial(
    tmp_path, monkeypatch
):
    path = draw(str(tmp_path / "history.png"))
    before = Path(path).read_bytes()
    monkeypatch.setattr(Figure, "savefig", fail_mid_write)
    with pytest.raises(CheckpointWriteError, match=r"history\.png.*File too large"):
        draw(path)
    with pytest.raises(CheckpointWriteError, match=r"report\.png.*File too large"):
        render_report(str(tmp_path / "report"), "M1", {"Model": {"name": "m"}})
    assert Path(path).read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["history.png", "report.txt"]


class FullDisk(io.TextIOWrapper):
    def write(self, text):
        super().write(text[:5])
        super().flush()
        raise OSError(28, "No space left on device")


def test_a_report_text_write_fault_is_wrapped_and_leaves_nothing(tmp_path, monkeypatch):
    def fdopen(fd, mode, encoding=None, newline=None):
        return FullDisk(io.BufferedWriter(io.FileIO(fd, "w")), encoding, newline=newline)

    monkeypatch.setattr(atomic.os, "fdopen", fdopen)
    with pytest.raises(CheckpointWriteError, match=r"report\.txt.*No space left"):
        render_report(str(tmp_path / "report"), "M1", {"Model": {"name": "m"}})
    assert os.listdir(tmp_path) == []


def test_a_png_fault_during_training_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    tg = trainer(tmp_path, epochs=1)
    tg.train()
    checkpoints = complete_checkpoints(tg.run_dir)
    monkeypatch.setattr(Figure, "savefig", fail_mid_write)
    resumed = trainer(tmp_path, epochs=2, resume=True, checkpoint_freq={"epoch": 1})
    with pytest.raises(CheckpointWriteError, match="File too large"):
        resumed.train()
    assert set(checkpoints) <= set(complete_checkpoints(tg.run_dir))
    assert leftovers(tg.run_dir) == []


def test_a_real_file_size_limit_while_saving_a_png_is_wrapped(tmp_path):
    script = textwrap.dedent(
        f"""
        import os, resource, signal, sys
        sys.path.insert(0, {os.getcwd()!r})
        from trainkit.reports import plot_history
        from trainkit.checkpoints import CheckpointWriteError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            plot_history({str(tmp_path / "history.png")!r}, {{"loss": [1.0, 0.5]}}, {{}},
                         val_batches=[], epoch_batches=[], key_metric="loss", best_index=None)
        except CheckpointWriteError as error:
            print("WRAPPED", error)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert "WRAPPED" in done.stdout and "history.png" in done.stdout, done.stderr
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ run folder


def test_an_unwritable_logs_dir_is_named_with_the_fix_at_construction(tmp_path, monkeypatch):
    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "mkdir", denied)
    with pytest.raises(CheckpointWriteError, match=r"Cannot create a run folder.*writable"):
        create_run_folder(str(tmp_path / "logs"), "model", None)
    with pytest.raises(CheckpointWriteError, match=r"PermissionError.*Received: logs_dir="):
        trainer(tmp_path / "ro")


def test_a_logs_dir_that_is_a_file_is_named(tmp_path):
    (tmp_path / "logs").write_text("")
    with pytest.raises(CheckpointWriteError, match=r"logs_dir=.*logs"):
        create_run_folder(str(tmp_path / "logs"), "model", None)


def test_run_outputs_are_readable_by_others(tmp_path):
    write_text(str(tmp_path / "report.txt"), "x")
    assert os.stat(tmp_path / "report.txt").st_mode & 0o777 == 0o644
    with open_append(str(tmp_path / "log.jsonl")) as file:
        file.write(json.dumps({"iter": 1}) + "\n")
    assert (tmp_path / "log.jsonl").read_text() == '{"iter": 1}\n'


class DiskFillingUp:
    """A file object that writes `limit` bytes, then fails as a full disk does."""

    def __init__(self, file, limit):
        self.file, self.limit = file, limit

    def fileno(self):
        return self.file.fileno()

    def write(self, data):
        if self.limit <= 0:
            raise OSError(28, "No space left on device")
        written = self.file.write(bytes(data[: self.limit]))
        self.limit -= written
        return written

    def close(self):
        self.file.close()


def test_a_record_that_fails_half_written_is_cut_back_and_not_counted(tmp_path):
    path = str(tmp_path / "metrics.csv")
    log = MetricsLog(path, ["loss"])
    log.append("train", {"epoch": 0}, {"loss": 1.0})
    before = Path(path).read_bytes()
    log._file._file = DiskFillingUp(log._file._file, limit=7)  # short write, then ENOSPC
    with pytest.raises(CheckpointWriteError, match=r"metrics\.csv.*No space left.*Nothing"):
        log.append("train", {"epoch": 0}, {"loss": 2.0})
    assert Path(path).read_bytes() == before and log.row_count() == 1
    log._file._file.limit = 10**6  # space again: the next row lands whole
    log.append("train", {"epoch": 0}, {"loss": 3.0})
    assert [row["loss"] for row in log.read()] == ["1.0", "3.0"] and log.row_count() == 2


def test_a_short_write_is_completed_not_left_torn(tmp_path):
    file = atomic.RecordFile(str(tmp_path / "log.csv"))
    file.append(b"a\n")
    file._file = DiskFillingUp(file._file, limit=10**6)
    file._file.write = lambda data, real=file._file.write: real(bytes(data[:1]))  # 1 byte per call
    file.append(b"bcd\n")
    file.close()
    assert (tmp_path / "log.csv").read_bytes() == b"a\nbcd\n"
