-- Login throttling reads a username's last success (its failures count only after it) and
-- prunes attempts older than any window; both need these indexes.
CREATE INDEX login_attempts_username_succeeded ON login_attempts (username, at) WHERE succeeded;
CREATE INDEX login_attempts_at ON login_attempts (at);
-- The audit log's staff filter matches staff_username (failed logins have no staff_id).
CREATE INDEX audit_log_staff_username ON audit_log (staff_username, id);
