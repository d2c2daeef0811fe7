"""How a `TrainGenerator` is built: arguments checked, settings resolved, data checked.

Everything here runs once, in `TrainGenerator.__init__` (and again for the generator
passed to `tg.evaluate()` or `tg.predict()`), before the loop takes its first slice:

* `wiring`: the order of construction, top to bottom, and the parts it builds;
* `argument_checks`, `keywords` (rare options, `model.fit` keywords refused with the
  trainkit way), `metric_directions` (`key_metric` and `max_is_best`),
  `stateful_checks` and `strategy_checks` (what stateful layers and a `tf.distribute`
  strategy need of the data): each argument's type and range, checked once;
* `settings`: every setting resolved once (passed > saved in the checkpoint > default),
  the one object the loop and the trainer's public attributes read;
* `preflight`: one peek at each generator checked against the model and the settings.

Validation's own arguments are checked by `evaluation.validation_arguments`, beside the
settings object they build.
"""
