-- Each process remembers who a session belongs to between requests (admin/staff_cache.py)
-- and forgets it on this notification: any change to staff (role, deactivation, password,
-- "log out everywhere", time zone) or to revoked_sessions ("log out"), by any writer.
CREATE FUNCTION notify_staff_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('admin_staff', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER staff_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON staff
    FOR EACH STATEMENT EXECUTE FUNCTION notify_staff_changed();
CREATE TRIGGER revoked_sessions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON revoked_sessions FOR EACH STATEMENT EXECUTE FUNCTION notify_staff_changed();
