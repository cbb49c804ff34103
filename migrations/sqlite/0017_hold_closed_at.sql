-- When a hold stopped holding (released by the push that sent it, or superseded by a
-- later plan), so that "who was in the group on a date" can say that the target did not
-- hold what the rules said while the push was held.
ALTER TABLE push_holds ADD COLUMN closed_at TEXT;
