"""Training: from a TrainingConfig to a complete run folder. The driver (`driver.train`,
`driver.resume`) checks a request and dispatches it; one training, whatever its role, is `run.Run`,
handed its role (`roles`: a run in this process; a Ray worker's is `distribution.worker.WorkerRole`).
The error classifiers are the leaf module `failures`. The run's Keras callbacks (`callbacks`:
progress events and cancel, timing, history, the plateau policy, checkpoints, the report; each owns
its state and saves it for an exact resume), the TensorBoard event files (`tensorboard`), the
environment a run records (`environment`), the compute device, and `distribution`: several GPUs, Ray
workers on one or more machines, and the Keras fixes that needs. Checkpoint files themselves live in
`core.runs.checkpoints`.

Imports inside this package run one way, with no cycle: driver -> distribution.ray_launcher ->
distribution.worker -> run -> roles, callbacks, failures. May import the core base modules,
`core.data`, `core.runs` and `core.modeling`; never cli.
"""
