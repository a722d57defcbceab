"""Runs: the run folder on disk, what one training leaves behind, and reading it back. Layout and
writers (`run_folder`); everything here reads plain files and never needs TensorFlow, so the window
and the CLI can list and inspect runs instantly.

May import the core base modules and `core.data`; never modeling, training or cli.
"""
