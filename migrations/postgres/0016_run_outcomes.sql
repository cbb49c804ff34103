-- One account of every run: what the run did as a whole, its evaluation and its push
-- together, recorded once the push finished. `rosterd runs`, the admin API, the console and
-- the daemon's `run finished` line all read it. A run without a row here (one recorded
-- before this migration, or one whose push never finished) is told by its `status`.
CREATE TABLE run_outcomes (
    run_id BIGINT PRIMARY KEY,
    -- succeeded | succeeded_with_held_pushes | held | partly_failed | failed | cut_short |
    -- nothing_to_do
    outcome TEXT NOT NULL,
    reason TEXT,
    -- Per target: members added and removed, writes, groups held and failed (JSON).
    pushed TEXT
);
