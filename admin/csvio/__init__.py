"""CSV import and export for every table: reading what spreadsheets write (formats, dialect,
mapping), checking every problem in one pass (scan, checks, screens, rule_check), writing at
COPY speed (importing, direct, incoming, spool), exporting with COPY TO (exporting,
export_split), progress and the HTTP routes."""
