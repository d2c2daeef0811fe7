# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Predict-mode validation: F1 on the whole set, at a tuned threshold
#
# F1, precision, recall and ROC-AUC are not means of per-batch values: the F1 of a
# validation set is not the average of its batches' F1s. `eval_fn='predict'` collects
# the predictions of the **whole** validation set and computes `val_metrics` on all of
# them with NumPy and scikit-learn. With `dynamic_predict_threshold=True` each
# validation also searches the decision threshold (`score > threshold`) that maximizes
# the key metric, and scores every thresholded metric there.
#
# The task: which of scikit-learn's digits are 9s? About one digit in ten is, so a
# classifier trained for a few epochs is unsure of the positives, and the best threshold
# is not 0.5. Afterwards `tg.predict` and `tg.evaluate` run a test generator through the
# model at the tuned threshold.
#
# Run it as a script with `python examples/08_predict_mode_validation.py`; with
# `TRAINKIT_EXAMPLES_SMALL=1` it trains fewer epochs (what the tests run).

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tempfile
from pathlib import Path

import keras
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import f1_score

from trainkit import DataGenerator, TrainGenerator

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


# %% [markdown]
# ## Data and model
#
# 1,200 digits train (20 batches of 60), 297 validate and 297 test (3 batches of 99
# each; one batch size per generator, one trace of the compiled step). The label is 1
# for a 9, else 0; the model ends in one sigmoid unit.

# %%
digits = load_digits()
x = (digits.images.reshape(len(digits.images), 64) / 16.0).astype("float32")
y = (digits.target == 9).astype("float32")
parts = {"train": slice(0, 1200), "val": slice(1200, 1497), "test": slice(1497, 1794)}
for name, rows in parts.items():
    print(f"{name}: {len(y[rows])} digits, {int(y[rows].sum())} of them 9s")


def build_model() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy")
    return model


def datagen(part: str, **kwargs) -> DataGenerator:
    rows = parts[part]
    return DataGenerator(data=x[rows], labels=y[rows], **kwargs)


# %% [markdown]
# ## Train with predict-mode validation
#
# `val_metrics` names what each validation computes on the whole set; `key_metric='f1'`
# picks the best epoch (higher is better, from its name), and
# `dynamic_predict_threshold=True` tunes the threshold on the grid 0.00, 0.01, ..., 1.00
# before every validation's metrics are computed.

# %%
keras.utils.set_random_seed(0)  # before building: reproducible initial weights
model = build_model()
val_datagen = datagen("val", batch_size=99)
tg = TrainGenerator(
    model,
    datagen("train", batch_size=60, shuffle=True, seed=0),
    val_datagen,
    epochs=3 if SMALL else 10,
    eval_fn="predict",
    val_metrics=["loss", "f1", "precision", "recall", "roc_auc"],
    key_metric="f1",
    dynamic_predict_threshold=True,
    iter_verbosity=0,
)
tg.train()
for name in ("f1", "precision", "recall", "roc_auc", "predict_threshold"):
    print(f"val {name:<17}", np.round(tg.val_history[name], 3).tolist())
print(f"best val f1: {tg.best_key_metric:.3f}; tuned threshold now: {tg.predict_threshold:.2f}")

# %% [markdown]
# ## The tuned threshold, checked
#
# `tg.predict(val_datagen)` returns the validation predictions of the trained model
# (the last validation saw the same weights). F1 at every threshold of the grid,
# computed with scikit-learn on all of them, peaks where trainkit put the threshold, and
# its value there is the last validation's F1. The mean of the per-batch F1s is another
# number: that is why F1 needs predict mode.

# %%
val_result = tg.predict(val_datagen)
scores, labels = val_result.predictions[:, 0], val_result.labels
grid = np.round(np.linspace(0.0, 1.0, 101), 2)
curve = np.array([f1_score(labels, scores > t, zero_division=0) for t in grid])
tuned = tg.predict_threshold
f1_tuned = f1_score(labels, scores > tuned, zero_division=0)
f1_half = f1_score(labels, scores > 0.5, zero_division=0)
print(f"val F1 at 0.5: {f1_half:.3f}; at the tuned threshold {tuned:.2f}: {f1_tuned:.3f}")
print(f"best F1 on the grid: {curve.max():.3f}")
assert np.isclose(f1_tuned, curve.max()) and np.isclose(f1_tuned, tg.val_history["f1"][-1])
assert f1_tuned >= f1_half

per_batch = [
    f1_score(labels[val_result.batch_indices == b], scores[val_result.batch_indices == b] > tuned)
    for b in np.unique(val_result.batch_indices)
]
print(f"mean of the {len(per_batch)} per-batch F1s: {np.mean(per_batch):.3f} (not the F1)")

# %% [markdown]
# ## `tg.predict` and `tg.evaluate` on a test generator
#
# `tg.predict(test_datagen)` runs one whole pass: predictions in serving order, with the
# labels served, each row's `set_name` and sample index. `tg.evaluate(test_datagen)`
# computes the `val_metrics` on a pass at `tg.predict_threshold`, the tuned threshold,
# without searching again; neither touches the trainer's counters or histories.

# %%
test_datagen = datagen("test", batch_size=99)
result = tg.predict(test_datagen)
print("predictions", result.predictions.shape, "labels", result.labels.shape)
print("first rows: set", result.set_names[:3].tolist(), "samples", result.sample_indices[:3])
test_scores, test_labels = result.predictions[:, 0], result.labels
test_f1 = {t: f1_score(test_labels, test_scores > t, zero_division=0) for t in (0.5, tuned)}
print(
    f"test F1 at 0.5: {test_f1[0.5]:.3f}; at the tuned threshold {tuned:.2f}: {test_f1[tuned]:.3f}"
)

evaluated = tg.evaluate(test_datagen)
print("tg.evaluate:", {name: round(value, 3) for name, value in evaluated.items()})
assert np.isclose(evaluated["f1"], test_f1[tuned])  # the same F1, at the tuned threshold

# %% [markdown]
# Left: F1 against the threshold on the validation set, where the tuned threshold sits
# at the peak. Right: the test scores of 9s and of other digits, and both thresholds:
# the scores of the 9s are spread below 0.5, which is what the tuning picks up.

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(10, 3.8), layout="constrained")
left, right = fig.subplots(1, 2)
left.plot(grid, curve, color="tab:blue")
left.axvline(0.5, color="0.5", linestyle=":", label=f"0.5: F1 {f1_half:.3f}")
left.axvline(tuned, color="tab:red", linestyle="--", label=f"tuned {tuned:.2f}: F1 {f1_tuned:.3f}")
left.set(xlabel="threshold", ylabel="F1", title="validation F1 by threshold")
left.legend()
bins = np.linspace(0, 1, 26)
right.hist(test_scores[test_labels == 0], bins, alpha=0.6, label="other digits")
right.hist(test_scores[test_labels == 1], bins, alpha=0.6, label="9s")
right.axvline(0.5, color="0.5", linestyle=":")
right.axvline(tuned, color="tab:red", linestyle="--")
right.set(xlabel="score", ylabel="test digits", yscale="log", title="test scores")
right.legend()
show(fig, OUT / "threshold.png")
