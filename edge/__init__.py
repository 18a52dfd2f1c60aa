"""The HTTP edge's parts (settings, identity, middleware, GraphQL over HTTP); wired in ``gateway.py``."""
