"""Scoring: audio -> windows -> model scores -> one score table (the one inference path)."""
