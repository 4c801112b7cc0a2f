-- Login backoff (admin/throttle.py): an attempt made from a browser that holds a valid device
-- cookie for the username typed records that device's id, and is judged by that device's own
-- failures alone; every other attempt has no device and counts per (username, IP), per
-- username and per IP.
ALTER TABLE login_attempts ADD COLUMN device text;
CREATE INDEX login_attempts_username_device_at ON login_attempts (username, device, at)
    WHERE NOT succeeded AND device IS NOT NULL;
