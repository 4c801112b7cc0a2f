"""Live updates: change capture in the database, one hub per process fanning events out to
bounded mailboxes, the two server-sent event streams (/events for orders, /live/changes for
every table), replay after a reconnect, gzip shared by every client, presence, and the
dashboard those streams keep current (its counters and chart)."""
