"""Abuse probes: no request, session, file or row may hurt other users or lose data."""
