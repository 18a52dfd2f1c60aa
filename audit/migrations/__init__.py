"""Alembic history of the audit trail's ``audit_log`` table (:mod:`audit.trail`); run it with
``connectors.migrate.migrate("audit", url)``."""
