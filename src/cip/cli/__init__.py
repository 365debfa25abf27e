"""The `cip` command line: one module per command, shared option groups in `options`."""
