"""Commands of this area register on the shared app when imported."""
