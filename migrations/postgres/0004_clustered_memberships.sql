-- SQLite's migration 0004 makes memberships and target_members WITHOUT ROWID tables.
-- PostgreSQL has no rowid and its tables are already heaps with one primary-key index, so
-- there is nothing to change; this file keeps the two migration histories numbered alike.
SELECT 1;
