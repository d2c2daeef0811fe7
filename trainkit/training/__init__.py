"""The train side: `TrainGenerator` and the pieces of its loop.

Modules: `trainer` (the loop), `loop_state` (its counters and histories), `steps`
(the compiled steps that call Keras, stateful-layer helpers), `frequency`,
`validation` (evaluate mode), `callback_list`, `interrupts`, `progress`, `config`.
"""

from trainkit.training.trainer import TrainGenerator

__all__ = ["TrainGenerator"]
