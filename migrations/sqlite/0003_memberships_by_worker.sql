-- The admin API's /api/v1/workers/{key}/groups looks a worker's memberships up by key.
CREATE INDEX memberships_worker ON memberships (worker_key);
