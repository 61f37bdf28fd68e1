"""The `avatarchat` command line: the entry point (main) and the whole-stack commands (up, ask)."""
