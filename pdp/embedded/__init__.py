"""pdp in the agent's own process: the sidecar's engine, snapshot sources,
hot reload, kill switch and state (SQLite or Redis), without gRPC.

``EmbeddedClient`` has the Python SDK's ``AsyncClient`` surface and gives
the same results and errors, because each call runs the sidecar's own
request handler on the SDK's request (needs the ``pdp-client`` package)::

    from pdp.embedded import EmbeddedClient

    async with await EmbeddedClient.open("examples/policies.yaml", state=".pdp/embedded.db") as pdp:
        result = await pdp.enforce_policy("my-chatbot", input=prompt)
"""

from ._client import EmbeddedClient

__all__ = ["EmbeddedClient"]
