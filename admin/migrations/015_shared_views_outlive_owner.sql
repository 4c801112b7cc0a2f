-- A shared view is used by others: it stays when its owner's staff account is deleted (its
-- owner becomes NULL, "a former staff member"); a private view still goes with its owner.
ALTER TABLE saved_views ALTER COLUMN staff_id DROP NOT NULL;
ALTER TABLE saved_views DROP CONSTRAINT saved_views_staff_id_fkey;
ALTER TABLE saved_views
    ADD CONSTRAINT saved_views_staff_id_fkey
    FOREIGN KEY (staff_id) REFERENCES staff (id) ON DELETE SET NULL;
-- only a shared view may be without an owner
ALTER TABLE saved_views
    ADD CONSTRAINT saved_views_owned_unless_shared CHECK (shared OR staff_id IS NOT NULL);

CREATE FUNCTION saved_views_drop_private() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM saved_views WHERE staff_id = OLD.id AND NOT shared;
    RETURN OLD;
END;
$$;

-- before the row goes, so the foreign key's SET NULL meets only shared views
CREATE TRIGGER staff_drop_private_views
    BEFORE DELETE ON staff
    FOR EACH ROW EXECUTE FUNCTION saved_views_drop_private();
