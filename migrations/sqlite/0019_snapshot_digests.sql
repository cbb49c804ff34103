-- The digest of each worker's row as the export had it, for the snapshot in force only (a
-- run that stores a new one deletes the others): a process that kept nothing from the run
-- before (`rosterd evaluate`, `sync`, a daemon just started) finds the workers whose rows
-- changed by comparing digests, and reads and compares only their stored rows. `form` names
-- how the digests were made (the export's format and the attributes' mapping); digests of
-- another form are not compared. `digests`: per worker in the snapshot's order, the key
-- (front-coded against the key before it) and the digest's low 8 bytes (see RowDigests).
CREATE TABLE snapshot_digests (
    snapshot_id INTEGER PRIMARY KEY REFERENCES snapshots (id) ON DELETE CASCADE,
    form TEXT NOT NULL,
    digests BLOB NOT NULL
);
