"""CLI: the argparse faces of the engine, one module per command (`inspect_command`,
`train_command`, `weights_command`, `model_commands` for evaluate, predict and export,
`cache_commands`, `doctor_command`, `runs_commands`). Thin: parse, call the engine, print.

`commands` is the table main.py builds its parser from; `common` holds what every command shares
(exit codes, Ctrl-C, the quiet-TensorFlow switch, errors as messages) and `terminal` the live
progress line. Inside the package: commands -> the command modules -> common, terminal; a command
module never imports another command module (import-linter checks it).

The top of the import graph: may import any of core, and nothing imports it but main.py.
"""
