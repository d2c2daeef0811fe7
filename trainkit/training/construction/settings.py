"""`TrainSettings`: every setting of a `TrainGenerator`, resolved once.

Each setting is resolved in one place before anything reads it: an argument the
caller passed beats the value saved in the checkpoint being resumed, which beats the
default. The loop, validation, checkpointing and the trainer's public attributes
(`tg.class_weights`, `tg.val_freq`, ...) all read this one object, so a resumed run
trains with its saved settings even when the script does not pass them again.

Two kinds of settings:

* loop control (`epochs`, the frequencies, verbosity, `max_checkpoints`, progress and
  output options) may change on resume and may be assigned on the trainer
  (`tg.val_freq = {'epoch': 2}`), checked on assignment;
* every other setting changes what is trained or how it is scored: on resume, a
  passed value must equal the saved one. `key_metric` and `max_is_best` may still
  change while the saved run has not scored a validation, so a run stopped by a bad
  `key_metric` can be fixed and continued.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from trainkit._stable import describe
from trainkit._validation import check_bool, check_choice, check_int, closest
from trainkit._validation import describe as describe_short
from trainkit.training.construction import argument_checks, keywords, metric_directions, preflight
from trainkit.training.evaluation import validation_arguments
from trainkit.training.evaluation.scoring import ValidationSettings
from trainkit.training.frequency import Frequency, parse_frequency
from trainkit.training.slices.health import ON_NONFINITE

LOOP_CONTROL = (
    "epochs", "val_freq", "checkpoint_freq", "iter_verbosity", "max_checkpoints",
    "steps_per_execution", "on_nonfinite",
)  # fmt: skip
COMPARED = (
    "key_metric", "max_is_best", "val_metrics", "eval_fn", "input_as_labels", "class_weights",
    "val_class_weights", "reset_statefuls", "model_base_name", "model_configs", "seed",
)  # fmt: skip
LOOP_CONTROL_OPTIONS = (
    "progress_every", "defer_interrupts", "plot_history_freq", "tensorboard", "tensorboard_every",
    "introspect_freq", "check_finite_data", "async_checkpoints",
)  # fmt: skip
# Compared settings that may change while the saved run has not validated yet.
FIXABLE_BEFORE_VALIDATION = ("key_metric", "max_is_best")

FREQUENCY_UNITS = {
    "val_freq": ("epoch", "batch", "iter"),
    "checkpoint_freq": ("epoch", "batch", "iter", "val"),
    "plot_history_freq": ("epoch", "batch", "val"),
    "introspect_freq": ("epoch", "batch", "iter"),
}

_REFUSED = (
    "Cannot resume: `{name}` affects what is trained or scored and differs from the saved "
    "run (saved {saved!r}). Pass the saved value, leave it out to use it, or start a new "
    "run (resume=False). Received: {name}={current!r}"
)
_READ_ONLY = (
    "`{name}` changes what is trained or scored, so it is fixed when the TrainGenerator is "
    "built: pass it as TrainGenerator(..., {name}=...). Settings that can be assigned on a "
    "trainer: {assignable}. Received: {name}={value}"
)
_LOST_CALLABLE = (
    "Cannot resume: the saved run's `val_metrics` holds the function {name!r}, which cannot "
    "be imported by that name here. Pass the same `val_metrics` again. ({error})"
)


@dataclass
class TrainSettings:
    """The checked settings of one trainer; `sources` says where each came from."""

    epochs: int
    val_freq: Frequency | None
    checkpoint_freq: Frequency | None
    iter_verbosity: int | str
    max_checkpoints: int
    steps_per_execution: int
    on_nonfinite: str
    key_metric: str
    max_is_best: bool
    input_as_labels: bool
    reset_statefuls: bool
    model_base_name: str
    model_configs: dict[str, Any] | None
    seed: int | None
    val_metrics: Any  # as given: names and callables (the checked form is in `validation`)
    validation: ValidationSettings
    plot_history_freq: Frequency | None
    introspect_freq: Frequency | None
    # The other rare options, read-only: a setting has one copy, and the two frequencies
    # above (which can change) live in their fields only.
    options: Mapping[str, Any]
    sources: dict[str, str] = field(default_factory=dict)  # 'passed' | 'saved' | 'default'
    # Described once, when the trainer is built: objects in it (an optimizer the model was
    # compiled with) change while training, the run's configuration does not.
    model_configs_record: Any = None

    @property
    def eval_fn(self) -> str:
        return self.validation.eval_fn

    def record(self) -> dict[str, Any]:
        """The settings as JSON, for `state.json` (the same text in every process)."""
        values = {name: _recorded(self, name) for name in (*LOOP_CONTROL, *COMPARED)}
        options = {
            **self.options,
            "plot_history_freq": self.plot_history_freq,
            "introspect_freq": self.introspect_freq,
        }
        values["options"] = {name: describe(_json(options[name])) for name in keywords.RARE_OPTIONS}
        return values

    def assign(self, name: str, value: Any) -> None:
        """Set a loop-control setting after construction, checked like the argument."""
        if name in ASSIGNABLE:
            setattr(self, name, check_loop_control(name, value))
            self.sources[name] = "passed"
            return
        raise AttributeError(
            _READ_ONLY.format(
                name=name, value=describe_short(value), assignable=", ".join(ASSIGNABLE)
            )
        )


ASSIGNABLE = (*LOOP_CONTROL, "plot_history_freq", "introspect_freq")


def check_loop_control(name: str, value: Any) -> Any:
    """One loop-control setting, checked (frequencies become `Frequency` objects)."""
    if name in FREQUENCY_UNITS:
        if isinstance(value, Frequency):
            value = {value.unit: value.n}
        return parse_frequency(name, value, FREQUENCY_UNITS[name])
    if name == "epochs":
        return check_int("epochs", value, minimum=0)
    if name == "max_checkpoints":
        return check_int("max_checkpoints", value, minimum=1)
    if name == "iter_verbosity":
        return check_choice("iter_verbosity", value, (0, "epoch", 1, 2))
    if name == "steps_per_execution":
        return check_int("steps_per_execution", value, minimum=1)
    if name == "on_nonfinite":
        return check_choice("on_nonfinite", value, ON_NONFINITE)
    raise KeyError(name)


def resolve(
    arguments: dict[str, Any],
    explicit: set[str],
    model: Any,
    saved: dict[str, Any] | None = None,
    saved_validated: bool = False,
) -> TrainSettings:
    """Explicit argument > saved setting > default, checked; compared settings must match.

    Args:
        arguments: every keyword of `TrainGenerator.__init__` with its value (defaults
            for those not passed), rare options under `'rare_options'`.
        explicit: the names the caller passed.
        model: the compiled model (its loss picks metric variants).
        saved: the `settings` record of the checkpoint being resumed, or None.
        saved_validated: whether that run has scored a validation.
    """
    chosen, sources = _choose(arguments, explicit, saved)
    settings = _build(chosen, sources, model, arguments["val_datagen"])
    if saved is not None:
        _compare(settings, saved, saved_validated)
    return settings


def _choose(
    arguments: dict[str, Any], explicit: set[str], saved: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    saved = saved or {}
    saved_options = saved.get("options", {})
    passed_options = arguments["rare_options"]
    chosen: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in (*LOOP_CONTROL, *COMPARED):
        if name in explicit:
            chosen[name], sources[name] = arguments[name], "passed"
        elif name in saved:
            chosen[name], sources[name] = _from_saved(name, saved[name]), "saved"
        else:
            chosen[name], sources[name] = arguments[name], "default"
    for name, default in keywords.RARE_OPTIONS.items():
        if name in passed_options:
            chosen[name], sources[name] = passed_options[name], "passed"
        elif name in saved_options:
            chosen[name], sources[name] = _from_saved(name, saved_options[name]), "saved"
        else:
            chosen[name], sources[name] = default, "default"
    new_key = sources["key_metric"] == "passed" and saved.get("key_metric") != chosen["key_metric"]
    if new_key and sources["max_is_best"] == "saved":
        # The saved direction belonged to the saved key_metric: pick the new one's.
        chosen["max_is_best"], sources["max_is_best"] = None, "default"
    return chosen, sources


def _build(
    chosen: dict[str, Any], sources: dict[str, str], model: Any, val_datagen: Any
) -> TrainSettings:
    options = keywords.check_rare_options({name: chosen[name] for name in keywords.RARE_OPTIONS})
    # Metric names first (a typo such as 'acuracy' says so), then key_metric's direction.
    validation = validation_arguments.check_validation_args(
        {**chosen, "val_datagen": val_datagen}, options, model
    )
    validates = val_datagen is not None and validation.eval_fn == "evaluate"
    if validates and isinstance(chosen["key_metric"], str):
        preflight.check_logged_names(model, validation, chosen["key_metric"])
    key_metric, max_is_best = metric_directions.check_key_metric(
        chosen["key_metric"], chosen["max_is_best"]
    )
    argument_checks.check_names(
        chosen["max_checkpoints"], chosen["model_configs"], chosen["model_base_name"]
    )
    return TrainSettings(
        epochs=check_loop_control("epochs", chosen["epochs"]),
        val_freq=check_loop_control("val_freq", chosen["val_freq"]),
        checkpoint_freq=check_loop_control("checkpoint_freq", chosen["checkpoint_freq"]),
        iter_verbosity=check_loop_control("iter_verbosity", chosen["iter_verbosity"]),
        max_checkpoints=chosen["max_checkpoints"],
        steps_per_execution=check_loop_control(
            "steps_per_execution", chosen["steps_per_execution"]
        ),
        on_nonfinite=check_loop_control("on_nonfinite", chosen["on_nonfinite"]),
        key_metric=key_metric,
        max_is_best=max_is_best,
        input_as_labels=check_bool("input_as_labels", chosen["input_as_labels"]),
        reset_statefuls=check_bool("reset_statefuls", chosen["reset_statefuls"]),
        model_base_name=chosen["model_base_name"],
        model_configs=chosen["model_configs"],
        seed=argument_checks.check_seed(chosen["seed"]),
        val_metrics=chosen["val_metrics"],
        validation=validation,
        plot_history_freq=check_loop_control("plot_history_freq", options.pop("plot_history_freq")),
        introspect_freq=check_loop_control("introspect_freq", options.pop("introspect_freq")),
        options=MappingProxyType(options),
        sources=sources,
        model_configs_record=describe(chosen["model_configs"]),
    )


def _compare(settings: TrainSettings, saved: dict[str, Any], saved_validated: bool) -> None:
    """A passed data-affecting setting that differs from the saved run is refused."""
    record, sources = settings.record(), settings.sources
    compared_options = [name for name in keywords.RARE_OPTIONS if name not in LOOP_CONTROL_OPTIONS]
    pairs = [(name, record.get(name), saved.get(name), name in saved) for name in COMPARED]
    saved_options = saved.get("options", {})
    pairs += [
        (name, record["options"].get(name), saved_options.get(name), name in saved_options)
        for name in compared_options
    ]
    for name, current, before, known in pairs:
        if not known or sources.get(name) != "passed" or current == before:
            continue
        if name in FIXABLE_BEFORE_VALIDATION and not saved_validated:
            continue  # nothing was scored with the old value yet
        raise ValueError(_REFUSED.format(name=name, saved=before, current=current))


# ------------------------------------------------------------------ JSON both ways


def _recorded(settings: TrainSettings, name: str) -> Any:
    if name == "model_configs":
        return settings.model_configs_record
    if name == "class_weights":
        return describe(settings.validation.class_weights)
    if name == "val_class_weights":
        return describe(settings.validation.val_class_weights)
    return describe(_json(getattr(settings, name)))


def _json(value: Any) -> Any:
    return {value.unit: value.n} if isinstance(value, Frequency) else value


def _from_saved(name: str, value: Any) -> Any:
    """A recorded setting back in the form the argument takes."""
    if name in ("class_weights", "val_class_weights") and isinstance(value, dict):
        if all(isinstance(table, dict) for table in value.values()):  # one per output
            return {key: {int(c): w for c, w in table.items()} for key, table in value.items()}
        return {int(key): weight for key, weight in value.items()}
    if name == "val_metrics" and isinstance(value, list):
        return [_callable(entry) if isinstance(entry, dict) else entry for entry in value]
    return value


def _callable(entry: dict[str, Any]) -> Any:
    """Import a function recorded as `{'callable': 'module.qualname'}`."""
    name = str(entry.get("callable", ""))
    module_name, _, qualname = name.rpartition(".")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(_LOST_CALLABLE.format(name=name, error=error)) from None
    return target


def unknown_attribute_error(owner: Any, name: str, public: list[str]) -> AttributeError:
    """`tg.unique_checkpoint_freq = ...`: refused, naming the closest public name."""
    hint = closest(name, public)
    suggestion = f" Did you mean {hint!r}?" if hint else ""
    return AttributeError(
        f"{type(owner).__name__} has no setting or attribute {name!r}, and assigning it would "
        f"change nothing.{suggestion} Settings that can be assigned: {', '.join(ASSIGNABLE)}; "
        "the others are passed to TrainGenerator(...). (A subclass declares its own public "
        f"attributes in its class body.) Received: {name}=..."
    )


# ------------------------------------------------------------------ the trainer's view


def _setting(name: str, doc: str, read: Any = None) -> property:
    """A public trainer attribute that reads (and, for loop control, sets) `_settings`."""

    def get(self: SettingsView) -> Any:
        return read(self._settings) if read else getattr(self._settings, name)

    def put(self: SettingsView, value: Any) -> None:
        self._settings.assign(name, value)
        self._setting_changed(name)

    return property(get, put, doc=doc)


class SettingsView:
    """The trainer's settings as public attributes: views of one `TrainSettings`.

    Loop-control settings can be assigned (`tg.epochs = 10`, `tg.val_freq = {'epoch': 2}`)
    and are checked on assignment; the others are read-only. Assigning a public name
    the trainer does not have raises AttributeError with the closest name.
    """

    _settings: TrainSettings
    _logs_dir: Any
    _best_models_dir: Any

    epochs = _setting("epochs", "The absolute number of epochs to train (assignable).")
    val_freq = _setting("val_freq", "How often to validate, a `Frequency` (assignable).")
    checkpoint_freq = _setting("checkpoint_freq", "How often to checkpoint (assignable).")
    introspect_freq = _setting(
        "introspect_freq", "How often to log gradient norms and weight health (assignable)."
    )
    plot_history_freq = _setting(
        "plot_history_freq", "How often to redraw history.png and the report (assignable)."
    )
    iter_verbosity = _setting(
        "iter_verbosity", "0 silent, 'epoch' a line per epoch, 1 per batch, 2 per slice too."
    )
    max_checkpoints = _setting("max_checkpoints", "Checkpoints kept in the run folder.")
    steps_per_execution = _setting(
        "steps_per_execution", "Slices fit per compiled call (assignable)."
    )
    on_nonfinite = _setting(
        "on_nonfinite", "'raise', 'stop', 'skip' or 'ignore' a non-finite slice (assignable)."
    )
    key_metric = _setting("key_metric", "The validation metric that picks the best model.")
    max_is_best = _setting("max_is_best", "Whether a larger `key_metric` is better.")
    eval_fn = _setting("eval_fn", "'evaluate' or 'predict': how validation scores.")
    input_as_labels = _setting("input_as_labels", "Fit `x` as its own target.")
    reset_statefuls = _setting("reset_statefuls", "Reset stateful layers at batch ends.")
    model_base_name = _setting("model_base_name", "The run folders' base name.")
    model_configs = _setting("model_configs", "Settings named in the run folder's name.")
    seed = _setting("seed", "The seed given to Python, NumPy and Keras at construction.")
    val_metrics = _setting(
        "val_metrics", "The validation metric names.", lambda s: s.validation.val_metric_names
    )
    class_weights = _setting(
        "class_weights", "`{class: weight}` for training.", lambda s: s.validation.class_weights
    )
    val_class_weights = _setting(
        "val_class_weights",
        "`{class: weight}` for validation.",
        lambda s: s.validation.val_class_weights,
    )

    @property
    def logs_dir(self) -> Any:
        """The folder that holds the run folders (None: no run folder)."""
        return self._logs_dir

    @property
    def best_models_dir(self) -> Any:
        """The folder that receives each new best model (or None)."""
        return self._best_models_dir

    @property
    def _val(self) -> ValidationSettings:
        return self._settings.validation

    @property
    def _options(self) -> Mapping[str, Any]:
        return self._settings.options

    def _setting_changed(self, name: str) -> None:
        """Called after a setting was assigned; the trainer refreshes what depends on it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_") and not _declared(type(self), name):
            public = sorted(n for k in type(self).__mro__ for n in _public_names(k))
            raise unknown_attribute_error(self, name, public)
        super().__setattr__(name, value)


def _public_names(klass: type) -> list[str]:
    names = list(vars(klass)) + list(getattr(klass, "__annotations__", {}))
    return [name for name in names if not name.startswith("_")]


_DECLARED: set[tuple[type, str]] = set()  # found declared once: declared for good


def _declared(klass: type, name: str) -> bool:
    if (klass, name) in _DECLARED:  # (a loop that sets `tg.epochs` per call asks again)
        return True
    found = any(name in _public_names(k) for k in klass.__mro__)
    if found:
        _DECLARED.add((klass, name))
    return found
