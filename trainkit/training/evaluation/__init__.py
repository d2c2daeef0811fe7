"""The model scored on data: validation during training, `tg.evaluate()`, `tg.predict()`.

* `validation`: evaluate mode (means of the model's `test_step`) and predict mode
  (`val_metrics` on every prediction), resumable mid-validation;
* `prediction`: `Predictions` over a generator, in data order;
* `scoring`: `val_metrics` bound to the model, the tuned threshold, the best subset;
* `metric_masses`: evaluate mode's means weighted as `model.evaluate` weighs them;
* `logged_names`: the names `test_step` will log, known before any step;
* `padding`: partial batches padded for a model with a fixed batch size;
* `sample_weights`: class weights times a slice's position weight (the train steps use
  them too);
* `validation_arguments`: validation's arguments checked into `ValidationSettings`.
"""
