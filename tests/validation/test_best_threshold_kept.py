"""With `dynamic_predict_threshold`, the threshold kept is the best validation's."""

import pytest
from validation_helpers import binary_arrays, binary_model

from trainkit import DataGenerator, TrainGenerator
from trainkit.training.evaluation import validation

X, Y = binary_arrays(48)
THRESHOLDS = [0.3, 0.7, 0.4]  # tuned at validations 1, 2, 3
SCORES = [0.9, 0.5, 0.7]  # the key metric at each: the first validation is the best


def scripted_key_metric():
    scores = iter(SCORES)

    def scripted(y_true, y_pred):
        return next(scores)

    return scripted


def trainer(tmp_path, resume=False):
    return TrainGenerator(
        binary_model(),
        DataGenerator(data=X[:32], labels=Y[:32], batch_size=8),
        DataGenerator(data=X[32:], labels=Y[32:], batch_size=8),
        eval_fn="predict", val_metrics=[scripted_key_metric()], key_metric="scripted",
        max_is_best=True,
        dynamic_predict_threshold=True, epochs=3, iter_verbosity=0,
        logs_dir=str(tmp_path), resume=resume,
    )  # fmt: skip


def test_the_threshold_kept_after_training_and_on_resume_is_the_best_models(tmp_path, monkeypatch):
    tuned = iter(THRESHOLDS)
    monkeypatch.setattr(validation, "tune_threshold", lambda *args: next(tuned))
    tg = trainer(tmp_path)
    tg.train()
    assert tg.val_history["predict_threshold"] == THRESHOLDS
    assert tg.val_history["scripted"] == SCORES
    assert tg.predict_threshold == pytest.approx(0.3)  # not the last validation's 0.4

    resumed = trainer(tmp_path, resume=True)
    assert resumed.predict_threshold == pytest.approx(0.3)
