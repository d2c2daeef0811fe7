"""A slice's way from the data generator into Keras, and back as values.

* `structure`: a served slice `(x, y[, sample_weight])` of arrays, dicts or tuples;
* `health`: NaN and inf caught on the host before a slice is fit, a non-finite loss
  pinpointed to its samples;
* `steps`: the compiled train and test steps (one slice, or a group of slices in one
  call) and the stateful-layer helpers; `distribute`: the same steps on every replica of
  a `tf.distribute` strategy;
* `record`: `SliceRecord`, what the loop's bookkeeping keeps of each slice it fit;
* `feeder`: `SliceFeeder`, which takes slices from the generator, checks and fits them,
  and queues their records for the loop.

The train loop (`trainer`) and validation (`evaluation`) both feed slices through these.
"""
