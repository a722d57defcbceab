"""CLI: the argparse faces of the engine, one module per command group (`main` for inspect and
train, `model_commands` for evaluate, predict and export). Thin: parse, call the engine, print.

The top of the import graph: may import any of core, and nothing imports it but main.py.
"""
