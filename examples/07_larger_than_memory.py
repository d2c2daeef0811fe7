# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Data larger than memory: a memory-mapped `.npy`, prefetch, and an offline store
#
# When the data does not fit in memory, keep it in one `.npy` file: a `DataGenerator`
# given `data_path='x.npy'` memory-maps it and reads only the rows of the batch being
# served, never the whole file. Three things make that fast enough to train from:
#
# 1. **reading by rows**: an epoch over the file leaves the process' memory about where
#    it was (trainkit releases the pages it has served);
# 2. **background prefetch** (`prefetch=2`; the default adapts, running ahead once that
#    pays): the next slices are read and preprocessed on a thread while the model fits
#    the current one, with the same slices, order and resume as without it;
# 3. **an offline store** (`trainkit.write_store`): an expensive preprocessor's slices are
#    computed once and kept on disk, and later epochs read them instead of computing
#    them again.
#
# The data are generated signals of 512 steps, each the sum of a few tones; the label
# says which of 4 frequency bands the loudest tone is in. The preprocessor turns each
# signal into a spectrogram, the expensive step. Full size writes a 1.6 GB file; with
# `TRAINKIT_EXAMPLES_SMALL=1` (what the tests run) it is 128 MB and training uses a
# part of it. Everything goes to `$TRAINKIT_EXAMPLES_OUT`, or a new temporary folder.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from trainkit import DataGenerator, Preprocessor, TrainGenerator, write_store
from trainkit.callbacks import Callback

SMALL = os.environ.get("TRAINKIT_EXAMPLES_SMALL") == "1"
OUT = Path(os.environ.get("TRAINKIT_EXAMPLES_OUT") or tempfile.mkdtemp(prefix="trainkit-"))


def show(figure, path):
    """Save a matplotlib figure to `path`; display it in a notebook, print the path else."""
    figure.savefig(path, dpi=80)
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(f"figure: {path}")
    else:
        display(Image(filename=str(path)))


def resident_mb() -> float:
    """This process' resident memory (RSS) in MB, as `top` shows it; NaN off Linux."""
    if not os.path.exists("/proc/self/status"):
        return float("nan")
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# %% [markdown]
# ## A large `.npy`, written in pieces
#
# `np.lib.format.open_memmap` creates the file at its full size and maps it, so it can
# be filled a block at a time without ever holding it in memory.

# %%
STEPS, BANDS = 512, 4
SAMPLES = 64_000 if SMALL else 800_000
BATCH = 250  # set 'k' of the file is rows [250 k, 250 (k + 1))


def signals(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` signals (count, STEPS) of three tones plus noise; the loudest tone's band."""
    t = (np.arange(STEPS) / STEPS).astype("float32")
    frequency = rng.uniform(8, 8 + 32 * BANDS, (count, 3)).astype("float32")
    amplitude = rng.uniform(0.2, 1.0, (count, 3)).astype("float32")
    amplitude[:, 0] += 0.5  # the first tone is the loudest
    phase = rng.uniform(0, 2 * np.pi, (count, 3, 1)).astype("float32")
    tones = amplitude[..., None] * np.sin(2 * np.pi * frequency[..., None] * t + phase)
    x = tones.sum(axis=1) + rng.normal(0, 0.5, (count, STEPS)).astype("float32")
    return x, ((frequency[:, 0] - 8) // 32).astype("int64")


x_path, y_path = OUT / "signals.npy", OUT / "labels.npy"
x_file = np.lib.format.open_memmap(x_path, mode="w+", dtype="float32", shape=(SAMPLES, STEPS))
y_file = np.lib.format.open_memmap(y_path, mode="w+", dtype="int64", shape=(SAMPLES,))
rng = np.random.default_rng(0)
for start in range(0, SAMPLES, 16_000):
    stop = min(start + 16_000, SAMPLES)
    if SMALL and start > 0:  # the small file repeats its first block (cheaper to make)
        x_file[start:stop], y_file[start:stop] = x_file[: stop - start], y_file[: stop - start]
    else:
        x_file[start:stop], y_file[start:stop] = signals(stop - start, rng)
x_file.flush(), y_file.flush()
del x_file, y_file  # unmapped: nothing of the file stays in this process
print(f"{x_path.name}: {SAMPLES:,} signals x {STEPS} steps, {x_path.stat().st_size / 1e6:,.0f} MB")

# %% [markdown]
# ## Reading it by rows
#
# One epoch over the whole file, with no model, recording the resident memory after
# every batch. The rows served are zero-copy views of the memory map; trainkit tells the
# kernel every 32 MB that the pages behind it are no longer needed (they stay in the
# file and the OS page cache), so the process' memory does not grow with the file.

# %%
reader = DataGenerator(data_path=str(x_path), labels_path=str(y_path), batch_size=BATCH)
before = resident_mb()
read_mb, rss_mb, total = [], [], 0.0
for x, _ in reader:
    total += float(x.sum())  # touch every value, as a model would
    read_mb.append((len(read_mb) + 1) * x.nbytes / 1e6)
    rss_mb.append(resident_mb() - before)
print(f"read {read_mb[-1]:,.0f} MB in {len(read_mb)} batches; resident memory grew by at")
print(f"most {max(rss_mb):.0f} MB and ends {rss_mb[-1]:.0f} MB above where it started")
if sys.platform.startswith("linux"):  # trainkit releases served pages on Linux only
    assert max(rss_mb) < 0.5 * read_mb[-1]

# %% [markdown]
# ## The expensive preprocessor
#
# `Spectrogram` turns each signal into the magnitudes of 64-step windows taken every
# 8 steps (57 frames of 33 frequencies), then averages them over frames into 33
# features; that costs far more than reading the rows. It defines `get_config()`, so the
# generator's fingerprint and the store's manifest know its settings. Training uses the
# first `TRAIN_SETS` sets of the file (`set_nums=`), the next ones validate.

# %%
TRAIN_SETS = 16 if SMALL else 2_400
VAL_SETS = 4 if SMALL else 400


class Spectrogram(Preprocessor):
    def __init__(self, window: int = 64, hop: int = 8):
        super().__init__()
        self.window, self.hop = window, hop

    def process(self, batch, labels):
        frames = np.lib.stride_tricks.sliding_window_view(batch, self.window, axis=1)
        frames = frames[:, :: self.hop] * np.hanning(self.window).astype("float32")
        magnitude = np.abs(np.fft.rfft(frames, axis=-1))  # (samples, frames, 33)
        return np.log1p(magnitude.mean(axis=1)).astype("float32"), labels

    def get_config(self):
        return {"class": "Spectrogram", "window": self.window, "hop": self.hop}


def raw(set_nums: list[str], **kwargs) -> DataGenerator:
    return DataGenerator(
        data_path=str(x_path),
        labels_path=str(y_path),
        batch_size=BATCH,
        set_nums=set_nums,
        preprocessor=Spectrogram(),
        **kwargs,
    )


train_sets = [str(k) for k in range(TRAIN_SETS)]
val_sets = [str(k) for k in range(TRAIN_SETS, TRAIN_SETS + VAL_SETS)]
features, _ = raw(train_sets).get()
print(f"one slice: {BATCH} signals -> features {features.shape}")

# %% [markdown]
# ## Prefetch: the next slices are ready when the model wants them
#
# With `prefetch=2` (the default runs ahead like this once it pays) a thread reads and
# preprocesses the next slices while TensorFlow runs the step (both release Python's
# GIL). What is served does not change:
# the same slices in the same order, the same random numbers, the same `state_dict()`,
# so a run trains bitwise the same weights with any `prefetch`. One epoch from the raw
# file, served synchronously and with prefetch, compared slice by slice, and timed:
# each slice's reading and spectrogram.
#
# What prefetch can save per batch in training is at most the shorter of the two, the
# step or the preprocessing, and only with a core free for the thread. A small model's
# step takes a few milliseconds and this spectrogram tens, so there is little to hide,
# and on a 2-core machine where TensorFlow's default threads take both cores for the
# step, nothing (`benchmarks/README.md`, "Preprocessing overlapped with the step",
# measures it with one TensorFlow thread, where it gains). When the preparation is the
# long part, precompute it: that is the store below.

# %%
synchronous, prefetching = raw(train_sets, prefetch=0), raw(train_sets, prefetch=2)
serve_ms, same = [], True
for _ in range(len(synchronous)):
    start = time.perf_counter()
    x_sync, y_sync = synchronous.get()
    synchronous.update_state()
    serve_ms.append(1000 * (time.perf_counter() - start))
    x_ahead, y_ahead = prefetching.get()
    prefetching.update_state()
    same = same and np.array_equal(x_sync, x_ahead) and np.array_equal(y_sync, y_ahead)
same = same and synchronous.state_dict() == prefetching.state_dict()
print(f"{len(serve_ms)} slices, the same with and without prefetch: {same}")
print(f"reading + spectrogram: {np.median(serve_ms):.0f} ms per batch of {BATCH}")
assert same

# %% [markdown]
# ## The offline store: preprocess once
#
# `write_store(datagen, out, chunk_size=...)` walks one epoch of the generator exactly as
# it would be served and keeps every slice on disk, `chunk_size` batches per chunk file,
# with a manifest written last. `workers=N` would compute the slices in N processes; a
# preprocessor defined in a notebook cannot be imported by them, so here it is one.
# A killed writer, run again, finishes without recomputing the chunks it wrote.

# %%
store_dir = OUT / "spectrogram_store"
start = time.perf_counter()
write_store(raw(train_sets), str(store_dir), chunk_size=4, progress=False)
print(f"write_store: {time.perf_counter() - start:.2f} s")
print(sorted(path.name for path in store_dir.iterdir())[:3], "...", "manifest.json")
stored = sum(path.stat().st_size for path in store_dir.glob("chunk-*")) / 1e6
print(f"{stored:.1f} MB of features for {TRAIN_SETS * BATCH * STEPS * 4 / 1e6:.1f} MB of signals")

# %% [markdown]
# `DataGenerator(data_path=store)` serves the stored slices: the same batches (names
# included), one chunk in memory at a time; `shuffle=True` shuffles the chunk order and
# the batches inside each chunk every epoch. Training from it runs the model, not the
# spectrogram.


# %%
def build_model() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((33,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(BANDS, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


class BatchTimer(Callback):
    """The median time between train batch ends, in ms (first batch and validation out)."""

    def on_train_begin(self, logs=None):
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())

    def median_ms(self) -> float:
        return 1000 * float(np.median(np.diff(self.ends)))


from_store = DataGenerator(data_path=str(store_dir), shuffle=True, seed=0)
print(f"store: {len(from_store)} batches, first set_name {from_store.plan(0)[0].set_name!r}")
keras.utils.set_random_seed(0)
timer = BatchTimer()
tg = TrainGenerator(
    build_model(),
    from_store,
    raw(val_sets),  # validation from the raw file, preprocessed as it is read
    epochs=4 if SMALL else 10,
    key_metric="accuracy",
    iter_verbosity=0,
    callbacks=[timer],
)
tg.train()
train_ms = timer.median_ms()
print(f"training from the store: {train_ms:.0f} ms per batch, the step included")
print("val accuracy per epoch:", np.round(tg.val_history["accuracy"], 3).tolist())
assert tg.val_history["accuracy"][-1] > 0.5  # 4 bands: chance is 0.25

# %% [markdown]
# Left: the resident memory while reading the whole file, against the megabytes read.
# Right: the time to read a batch and compute its spectrogram, against the time of a
# whole training batch from the store (reading the stored features and the step).

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(10, 3.8), layout="constrained")
left, right = fig.subplots(1, 2)
left.plot(read_mb, read_mb, color="0.7", linestyle="--", label="whole file in memory")
left.plot(read_mb, rss_mb, color="tab:blue", label="trainkit, data_path='signals.npy'")
left.set(xlabel="MB read", ylabel="resident memory growth (MB)", title="memory over an epoch")
left.legend()
names = ["raw file: read + spectrogram", "store: read + train step"]
right.barh(names, [float(np.median(serve_ms)), train_ms], color=["0.6", "tab:green"])
right.invert_yaxis()
right.set(xlabel="ms per batch (median)", title=f"batches of {BATCH} signals")
show(fig, OUT / "larger_than_memory.png")

# %% [markdown]
# The signal file is large (1.6 GB at full size): remove it and the store when done.

# %%
import shutil

x_path.unlink(), y_path.unlink()
shutil.rmtree(store_dir)
print("removed", x_path.name, y_path.name, store_dir.name)
