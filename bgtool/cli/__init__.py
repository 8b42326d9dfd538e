"""The `bgtool` command line."""
