"""Revisions, oldest first; each file names the one it follows (``down_revision``)."""
