"""Alembic history of the credit platform's schema (:mod:`connectors.credit.tables`); run it with
``connectors.migrate.migrate("credit", url)``."""
