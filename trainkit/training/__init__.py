"""The train side: `TrainGenerator` and the pieces of its loop.

The loop and its state sit at the top: `trainer` (the loop), `loop_state` (its
counters, histories, stages and hook order), `frequency`, `callback_list` (trainkit and
Keras callbacks), `interrupts` (deferred Ctrl-C and SIGTERM) and `checkpointing` (what a
checkpoint holds, saving, resuming). Four packages hold the rest, each with the
modules it lists:

* `construction`: the trainer built: arguments checked, settings resolved (passed >
  saved > default), the data checked against the model before the first step;
* `slices`: a slice's way into Keras: its structure, health checks, the compiled and
  distributed steps, the feeder that fits slices for the loop;
* `evaluation`: validation, `tg.evaluate()` and `tg.predict()` (docs/validation.md);
* `outputs`: progress lines, run logs and figures.

How the loop decides:

* The loop body is a sequence of stages (`loop_state.STAGES`). Each stage commits its
  bookkeeping and names the next stage *before* calling hooks. An exception raised
  before the commit (in a step, in the generator) makes `train()` run that stage
  again; an exception raised by a hook leaves the loop just past that stage, so that
  hook is not called again (callbacks after the raising one miss that one call).
* Ctrl-C is checked between stages, which include every slice boundary.
* A stop request (`tg.stop_training` or `model.stop_training`, e.g. EarlyStopping)
  is honoured at the next slice boundary after the current stage chain (batch end,
  validation, epoch end) has run.
* Hook indices follow Keras: `on_epoch_begin/end(epoch)` get the 0-based index of
  the epoch (so `on_epoch_end` sees `tg.epoch - 1`), batch hooks the batch's index
  within the epoch or the validation, `on_train_iter_end` the slice index within
  its batch. `on_val_batch_begin` is called before each validation batch, mirroring
  `on_train_batch_begin` and Keras' `on_test_batch_begin`.
* `train()` with no epochs left returns at once and fires nothing. After a run ended
  normally, raising `epochs` and calling `train()` starts a new run (`on_train_begin`
  again), as a second `model.fit` call would.
* Each validation starts from zeroed RNN states, and the train states are saved
  before it and restored after it, so validating never changes what training sees.
"""

from trainkit.training.trainer import TrainGenerator

__all__ = ["TrainGenerator"]
