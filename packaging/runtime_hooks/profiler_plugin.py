"""PyInstaller runtime hook: stands in for TensorFlow's remote-profiling client, which the bundle leaves out.

`import tensorflow` imports `tf.profiler.experimental.client`, which loads
`_pywrap_profiler_plugin.so` (30 MB): the client that captures a trace from a profiler server on
another machine (`trace`, `monitor`). FitStudio never calls it; TensorBoard's profiling in the
Keras callback uses `_pywrap_profiler`, which stays. This module takes the plugin's place, so the
import succeeds and a call says what is missing instead of crashing.
"""

import sys
import types

PLUGIN = "tensorflow.python.profiler.internal._pywrap_profiler_plugin"


def _not_in_this_build(*_args, **_kwargs):
    raise NotImplementedError(
        "Remote profiling (tf.profiler.experimental.client) is not part of the standalone FitStudio; "
        "run FitStudio from source for it."
    )


stand_in = types.ModuleType(PLUGIN, __doc__)
stand_in.trace = stand_in.monitor = _not_in_this_build
sys.modules.setdefault(PLUGIN, stand_in)
