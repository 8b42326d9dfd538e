-- Contract: release 1.0.0 reads `locale` and no longer reads or writes `lang`.
-- bgtool:contract-after 1.0.0
ALTER TABLE greetings DROP COLUMN lang;
