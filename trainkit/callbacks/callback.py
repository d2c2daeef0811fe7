"""`Callback`: the base class for hooks into `TrainGenerator`'s loop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainkit.training import TrainGenerator


class Callback:
    """Base class for trainkit callbacks: every hook of the train loop, as a no-op.

    Subclass it and override the hooks you need. The trainer sets `self.trainer`
    before the first hook, so a hook can read any public state of the loop
    (`self.trainer.iters_fit`, `self.trainer.datagen.set_name`, ...) or stop the run
    (`self.trainer.stop_training = True`).

    Hook order, per epoch:
    `on_epoch_begin` → per batch `on_train_batch_begin`, per slice `on_train_iter_end`,
    `on_train_batch_end` → validation if due (`on_val_begin`, per batch
    `on_val_batch_begin` and `on_val_batch_end`, `on_val_end`) → `on_epoch_end`.
    `on_train_begin` fires once per run and `on_train_end` once when it ends normally.

    Arguments follow Keras: `epoch` and `batch` are 0-based indices (`batch` counts
    batches within the epoch, or within the validation), `iteration` counts slices
    within the current batch, and `logs` is a dict of floats: a batch's own values for
    batch hooks, the epoch's sample-weighted means (plus `val_*` of this epoch's
    validation) for `on_epoch_end`, and the validation's means for `on_val_end`.

    A callback that holds state which must survive a checkpoint returns it from
    `state_dict()` (JSON-serializable) and takes it back in `load_state_dict()`.

    Example:

    ```python
    from trainkit.callbacks import Callback

    class PrintLoss(Callback):
        def on_train_batch_end(self, batch, logs=None):
            print(self.trainer.batches_fit, logs["loss"])

    TrainGenerator(model, datagen, callbacks=[PrintLoss()]).train()
    ```
    """

    trainer: TrainGenerator

    def set_trainer(self, trainer: TrainGenerator) -> None:
        """Called by the trainer at construction; sets `self.trainer`."""
        self.trainer = trainer

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        """Once, when a run starts (not on re-entry after an interrupt or resume)."""

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        """Once, when a run ends normally (epochs done or stop requested)."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        """Before the first slice of epoch `epoch` (0-based) is fit."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        """After epoch `epoch` (0-based) and its validation, if one was due."""

    def on_train_batch_begin(self, batch: int, logs: dict[str, float] | None = None) -> None:
        """Before the first slice of a train batch is fit."""

    def on_train_iter_end(self, iteration: int, logs: dict[str, float] | None = None) -> None:
        """After each slice is fit and the data state updated; `logs` are its values."""

    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        """After a batch's last slice (and stateful reset); `logs` are its own values."""

    def on_val_begin(self, logs: dict[str, float] | None = None) -> None:
        """When a validation starts."""

    def on_val_batch_begin(self, batch: int, logs: dict[str, float] | None = None) -> None:
        """Before the first slice of a validation batch is evaluated."""

    def on_val_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        """After a validation batch's last slice; `logs` are its own values."""

    def on_val_end(self, logs: dict[str, float] | None = None) -> None:
        """When a validation ends; `logs` are its sample-weighted means."""

    def on_save(self, path: str) -> None:
        """After the trainer saved a checkpoint to `path`."""

    def on_load(self, path: str) -> None:
        """After the trainer loaded a checkpoint from `path`."""

    def state_dict(self) -> dict[str, Any]:
        """This callback's state to checkpoint (JSON-serializable). Default: `{}`."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict()` returned. Default: nothing to restore."""
