"""The embedded AWS: a moto server on loopback (and, beside it, the local data plane)."""
