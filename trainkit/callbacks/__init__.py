"""Callbacks for `TrainGenerator`: the `Callback` base class users subclass.

Stock `keras.callbacks.Callback` objects are accepted too and are driven through the
same loop order under their Keras names (`on_test_*` for validation).
"""

from trainkit.callbacks.callback import Callback

__all__ = ["Callback"]
