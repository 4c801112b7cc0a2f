-- Change capture for every administered table: statement-level triggers with transition
-- tables, installed by the panel for each table of its catalog (admin/capture.py), write one
-- row per changed row here, or one summary row for a statement above the row limit, so every
-- writer (the panel, psql, COPY, the shop's own code) is seen. Ids are released to live
-- streams in commit-consistent order the way order_events are (admin/hub.py). Only those
-- triggers write here: they run after their statement's write, so the transaction already
-- has its xid when it draws an id. There is no NOTIFY: it would serialise every writer's
-- commit on the notification queue; the panel polls this table's sequence instead.
CREATE TABLE resource_changes (
    id bigserial PRIMARY KEY,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    op text NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
    -- the primary key's parts as text; NULL for a summary row (row_count rows, or TRUNCATE)
    key text[],
    row_count bigint NOT NULL DEFAULT 1,
    actor text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX resource_changes_created_at ON resource_changes (created_at);
