"""Issues: errors grouped by fingerprint, their triage, search and backfill."""
