"""GraphQL errors resolvers hand to graphql-core, each with a stable ``extensions.code``."""

from __future__ import annotations

from graphql import GraphQLError

MESSAGES = {
    "FORBIDDEN": "Not allowed to read this field.",
    "PURPOSE_REQUIRED": "A declared purpose of use is required (X-Purpose-Of-Use header).",
    "CASE_REF_REQUIRED": "A case reference is required (X-Case-Ref header).",
    "POLICY_UNAVAILABLE": "The policy engine could not decide; nothing sensitive is returned.",
    "CONNECTOR_UNAVAILABLE": "The department system behind this field did not answer.",
}


def coded_error(code: str, message: str | None = None) -> GraphQLError:
    """A GraphQLError with ``extensions.code`` and a message a front-end developer can act on."""
    return GraphQLError(message or MESSAGES.get(code, code), extensions={"code": code})


def unavailable(connector: str) -> GraphQLError:
    """The error for fields whose connector failed or timed out."""
    return coded_error("CONNECTOR_UNAVAILABLE", f"The {connector} connector did not answer in time.")


__all__ = ["MESSAGES", "coded_error", "unavailable"]
