"""The modules here are host checks that the health gate runs against a color's hosts
(`bgtool verify`, with testinfra and --noconftest); the project's own test run must not collect
them, since they describe other machines."""

collect_ignore_glob = ["test_*.py"]
