"""Runs: the run folder on disk, what one training leaves behind, and reading it back. Layout and
writers (`run_folder`), the checkpoint files (`checkpoints`), `run_info.read_run_info`, the one
description of a run folder that the window, the CLI and the runs index use, and the runs index
(`index`: every run under the output folders, for `runs` and the Runs tab). Everything here reads
plain files and never needs TensorFlow at import, so the window and the CLI can list and inspect
runs instantly.

May import the core base modules and `core.data`; never modeling, training or cli.
"""
