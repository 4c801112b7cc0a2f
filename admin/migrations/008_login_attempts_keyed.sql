-- login_attempts.username now holds a keyed hash of what was typed (admin/throttle.py
-- subject()): people type passwords into the username field, and none may be kept. Rows
-- written before held the text itself; they only served the last hour's backoff.
DELETE FROM login_attempts;
COMMENT ON COLUMN login_attempts.username IS
    'keyed hash of the username typed (admin/throttle.py subject()), never the text';
