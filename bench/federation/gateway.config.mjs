// Hive Gateway configuration for bench/federation.py: forward the caller's identity to every
// subgraph, which verifies it itself (docs/deploy.md shows the same for production).
import { defineConfig } from "@graphql-hive/gateway";

const FORWARDED = ["authorization", "x-purpose-of-use", "x-case-ref", "x-request-id"];

export const gatewayConfig = defineConfig({
  propagateHeaders: {
    fromClientToSubgraphs({ request }) {
      const headers = {};
      for (const name of FORWARDED) {
        const value = request.headers.get(name);
        if (value) headers[name] = value;
      }
      return headers;
    },
  },
});
