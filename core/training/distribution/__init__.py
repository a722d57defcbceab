"""Distribution: training on several GPUs of one computer, or in several worker processes on one or
more machines. Strategy selection (`strategies`), the input path that gives every worker its own
shard (`inputs`), the Ray launcher and its workers (`ray_launcher`, `worker`), and the compatibility
fixes Keras 3.15 needs under MultiWorkerMirroredStrategy (`keras_compat`).

Part of the training layer: may import the core base modules, `core.data`, `core.runs`,
`core.modeling` and the rest of `core.training`; never cli. TensorFlow and Ray are imported inside
functions only, so importing these modules costs nothing and works without Ray installed.
"""
