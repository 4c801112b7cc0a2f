-- csv_refuse_row(value): raises. An import copied straight into its table (csv_direct) calls
-- it from COPY's WHERE for a row that breaks a rule the table does not enforce, so the rules
-- are checked as the rows are read instead of by a second scan of the table; the import
-- then stages the file and names every problem. IMMUTABLE so that COPY keeps its batched
-- inserts (a volatile WHERE turns them off); it takes a column of the row, so it is never
-- evaluated ahead of the rows.
CREATE FUNCTION csv_refuse_row(value anyelement) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
BEGIN
    RAISE EXCEPTION 'a row of the file breaks an import rule'
        USING ERRCODE = 'P0001', HINT = 'the import stages the file to name every problem';
END;
$fn$;
