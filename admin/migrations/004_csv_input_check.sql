-- csv_input_is_valid(value, type): would `value::type` succeed? CSV imports use it to report
-- every bad cell (line, column, value) instead of stopping at the first failed cast.
-- PostgreSQL 16+ has pg_input_is_valid, which checks without raising; older servers (15)
-- get a fallback that tries the cast inside an exception block (slower, but only used on
-- the error path of an import).
DO $migration$
BEGIN
    IF current_setting('server_version_num')::int >= 160000 THEN
        CREATE FUNCTION csv_input_is_valid(value text, type_name text) RETURNS boolean
        LANGUAGE sql STABLE PARALLEL SAFE
        RETURN pg_input_is_valid(value, type_name);
    ELSE
        CREATE FUNCTION csv_input_is_valid(value text, type_name text) RETURNS boolean
        LANGUAGE plpgsql STABLE AS $fn$
        BEGIN
            EXECUTE format('SELECT %L::%s', value, type_name);
            RETURN true;
        EXCEPTION WHEN data_exception THEN
            RETURN false;
        END;
        $fn$;
    END IF;
END;
$migration$;
