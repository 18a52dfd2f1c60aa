"""Alembic history of the video resource library's schema (:mod:`connectors.video.tables`); run it
with ``connectors.migrate.migrate("video", url)``."""
