"""Alembic history of the e-license store's schema (:mod:`connectors.license.tables`); run it with
``connectors.migrate.migrate("license", url)``."""
