"""The database guard: migrations ship with a release, and a backward-incompatible one waits.

Both colors share one database. A migration that the live color's code (or the code a rollback
would bring back) cannot live with turns a rollback into an outage, so every pending migration is
parsed with a real SQL parser and classified as *expand* (old code keeps working) or *contract*
(old code may break). A contract migration runs only once every version that may still serve is
at or past the version it declares with `-- bgtool:contract-after VERSION`.

Pure parts (classification, naming rules, verdicts) are apart from I/O (reading files, the ledger
of applied migrations, running them); nothing here prints.
"""
