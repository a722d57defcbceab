"""Modeling: everything done with a Keras model. Builders (`models`), a frozen backbone's extractor,
head and features (`features`), opening a user's model safely (`model_io`), evaluation, prediction
(of image files, and of camera and video frames: `frames`) and export.

May import the core base modules, `core.data` and `core.runs`; never training or cli (training uses
these builders, not the other way round). TensorFlow is imported inside functions, so importing a
module here stays cheap.
"""
