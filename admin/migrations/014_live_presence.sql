-- Who has a record's edit form open: each open form says so every 15 s (admin/presence.py);
-- a row not renewed for 45 s is stale and ignored, and pruned by the next ping on that
-- record. Unlogged: after a crash it is empty, which is right (no form survives one).
CREATE UNLOGGED TABLE live_presence (
    schema_name text NOT NULL,
    table_name text NOT NULL,
    key text NOT NULL,
    staff_id bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    username text NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, table_name, key, staff_id)
);
CREATE INDEX live_presence_staff_id ON live_presence (staff_id);
