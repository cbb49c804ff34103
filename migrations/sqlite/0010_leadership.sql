-- Fencing for several `rosterd run` processes on one database: a process that takes the
-- leadership (the advisory lock) bumps `epoch`, and every write transaction of a run checks,
-- in the same transaction, that the epoch is still the one the run started under. A process
-- that lost the lock without noticing can then not write another run's state.
CREATE TABLE leadership (
    id INTEGER PRIMARY KEY,
    epoch BIGINT NOT NULL,
    holder TEXT NOT NULL,
    since TEXT NOT NULL
);
