-- The live feed releases order_events in id order only once every transaction that could
-- still commit a smaller id has finished. It reads the id sequence, then a snapshot: every id
-- handed out before that snapshot must belong to a transaction that already has an xid, or
-- the snapshot cannot see that the transaction is still running. Inserts fired by the
-- triggers on orders always have one (the orders row came first); a direct INSERT or COPY
-- into order_events would draw its id before its xid. This statement-level trigger takes
-- the xid first, once per statement, so that case is covered too.
CREATE FUNCTION order_events_take_xid() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_current_xact_id();
    RETURN NULL;
END;
$$;
CREATE TRIGGER order_events_take_xid BEFORE INSERT ON order_events
    FOR EACH STATEMENT EXECUTE FUNCTION order_events_take_xid();
