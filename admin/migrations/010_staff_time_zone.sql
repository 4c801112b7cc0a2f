-- The IANA zone each staff member reads times in. No CHECK: the valid names are the tz
-- database the application runs with, which PostgreSQL's own copy need not match, so the
-- application validates them (admin/timefmt.py).
ALTER TABLE staff ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';
