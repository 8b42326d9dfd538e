"""Stage 1, configuration: the environment file's schema, its in-place rewrites, the project root."""
