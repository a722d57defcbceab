"""FitStudio's engine: data, models and training, with no Qt anywhere below this package.

Layers, each importing only those before it (tests/core/test_architecture.py enforces this):

    base       errors, paths, files, config, events: plain Python, no TensorFlow
    data       scanning, decoding, batch streams and caches
    runs       the run folder on disk and reading it back
    modeling   model builders, safe loading, evaluation, prediction, export
    training   the fit driver, callbacks, checkpoints, the compute device
    cli        the command line, on top of everything
"""
