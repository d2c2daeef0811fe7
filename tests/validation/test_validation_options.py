"""Bad values of every validation option are refused at construction, clearly."""

import pytest
from validation_helpers import binary_arrays, binary_model

from trainkit import DataGenerator, TrainGenerator

X, Y = binary_arrays(30)


@pytest.fixture(scope="module")
def model():
    return binary_model()


@pytest.fixture(scope="module")
def datagens():
    train = DataGenerator(data=X[:20], labels=Y[:20], batch_size=5)
    return train, DataGenerator(data=X[20:], labels=Y[20:], batch_size=5)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"eval_fn": "score"}, ValueError, "Received: eval_fn='score'"),
        ({"val_metrics": "f1"}, TypeError, "must be a list of metric names"),
        ({"val_metrics": ["loss", 3]}, TypeError, "Received: val_metrics=\\['loss', 3\\]"),
        ({"val_metrics": [len]}, TypeError, "with eval_fn='predict', a callable"),
        ({"val_metrics": []}, ValueError, "non-empty"),
        ({"val_metrics": ["loss", "loss"]}, ValueError, "without repeats"),
        ({"val_metrics": ["accuracy"]}, ValueError, "key_metric='loss' must be one of"),
        (
            {"eval_fn": "predict", "val_metrics": ["loss", "f2"]},
            ValueError,
            "Unknown metric 'f2'",
        ),
        ({"eval_fn": "predict", "key_metric": "f3"}, ValueError, "Unknown metric 'f3'"),
        ({"class_weights": [1.0, 2.0]}, TypeError, "must be a dict mapping class indices"),
        ({"class_weights": {}}, TypeError, "class_weights"),
        ({"class_weights": {"a": 1.0}}, TypeError, "Received: class_weights=\\{'a': 1.0\\}"),
        ({"val_class_weights": {0: -1.0}}, ValueError, "finite and >= 0"),
        ({"val_class_weights": {0: "2"}}, TypeError, "val_class_weights"),
        ({"predict_threshold": 1.5}, ValueError, "Received: predict_threshold=1.5"),
        ({"predict_threshold": "0.5"}, TypeError, "must be a float in \\[0, 1\\]"),
        ({"dynamic_predict_threshold": 1}, TypeError, "dynamic_predict_threshold"),
        ({"dynamic_predict_threshold": True}, ValueError, "needs eval_fn='predict'"),
        ({"loss_weighted_slices_range": 0.5}, TypeError, "must be a pair \\(first, last\\)"),
        ({"loss_weighted_slices_range": (1, 2, 3)}, TypeError, "loss_weighted_slices_range"),
        ({"pred_weighted_slices_range": (-1, 1)}, ValueError, "finite, >= 0"),
        ({"pred_weighted_slices_range": (0, 0)}, ValueError, "not both 0"),
        ({"best_subset_size": 0}, ValueError, "best_subset_size"),
        ({"best_subset_size": 1.5}, TypeError, "best_subset_size"),
        ({"best_subset_size": 3}, ValueError, "at most the number of validation batches \\(2\\)"),
        ({"best_subset_sise": 1}, ValueError, "Did you mean 'best_subset_size'"),
    ],
)
def test_bad_validation_options_are_refused_at_construction(
    model, datagens, kwargs, error, message
):
    with pytest.raises(error, match=message):
        TrainGenerator(model, *datagens, **kwargs)


def test_predict_mode_defaults_val_metrics_to_loss_and_the_key_metric(model, datagens):
    tg = TrainGenerator(model, *datagens, eval_fn="predict", key_metric="f1", iter_verbosity=0)
    assert tg.val_metrics == ["loss", "f1"]
    assert TrainGenerator(model, *datagens, eval_fn="predict").val_metrics == ["loss"]


def test_class_weights_on_labels_that_are_not_classes_are_refused(model, datagens):
    import numpy as np

    datagen = DataGenerator(data=X[:10], labels=np.zeros((10, 2, 2)), batch_size=5)
    tg = TrainGenerator(model, datagen, class_weights={0: 1.0}, iter_verbosity=0)
    with pytest.raises(ValueError, match="one class per sample"):
        tg.train()


def test_dynamic_threshold_on_multiclass_outputs_is_refused_at_the_first_validation():
    import numpy as np
    from validation_helpers import sparse_model

    x, y = X, np.arange(30) % 3
    tg = TrainGenerator(
        sparse_model(), DataGenerator(data=x[:20], labels=y[:20], batch_size=5),
        DataGenerator(data=x[20:], labels=y[20:], batch_size=5), eval_fn="predict",
        dynamic_predict_threshold=True, iter_verbosity=0,
    )  # fmt: skip
    with pytest.raises(ValueError, match="needs binary predictions"):
        tg.train()
