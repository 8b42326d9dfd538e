-- Expand: a new column with a default, so code that does not know it keeps inserting rows.
ALTER TABLE greetings ADD COLUMN locale TEXT NOT NULL DEFAULT 'en';

UPDATE greetings SET locale = lang WHERE lang IS NOT NULL;

CREATE INDEX greetings_locale ON greetings (locale);
