"""Pull-request checks: `cip check` judges a manifest change before it is merged.

Each check is one small module with an id, a one-line description and `run(context)`, which
returns findings as data and never prints; `catalog.py` lists them and runs them concurrently,
`change.py` works out what the change touches, `context.py` shares the registry reads.
"""
