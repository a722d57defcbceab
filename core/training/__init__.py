"""Training: from a TrainingConfig to a complete run folder. The fit driver (`driver.train`,
`driver.resume`), the Keras callbacks that stream events and honour cancel, checkpoints for exact
resume, and the compute device.

May import the core base modules, `core.data`, `core.runs` and `core.modeling`; never cli.
"""
