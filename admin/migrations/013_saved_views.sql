-- Saved list views: a name for a list's state (search, filters, sort, page size, columns),
-- kept per staff member, and shared with everyone when its owner says so. The panel's own
-- table, never a resource.
CREATE TABLE saved_views (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_id bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    resource text NOT NULL CHECK (length(resource) BETWEEN 1 AND 200),
    name text NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 80),
    -- the list's query string as the list itself writes it (never a cursor or position)
    query text NOT NULL CHECK (length(query) <= 4000),
    shared boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (staff_id, resource, name)
);
CREATE INDEX saved_views_shared ON saved_views (resource, name) WHERE shared;
