-- The table the sample application reads its greeting from.
CREATE TABLE greetings (
    id INTEGER PRIMARY KEY,
    text TEXT NOT NULL,
    lang TEXT
);

INSERT INTO greetings (text, lang) VALUES ('hello', 'en');
