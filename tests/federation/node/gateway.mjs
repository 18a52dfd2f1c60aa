// Apollo Gateway (IntrospectAndCompose) in front of running subgraphs, on 127.0.0.1 only.
// usage: node gateway.mjs --port N [--health-port N] name=url [name=url ...]
// Forwards the caller's identity to every subgraph, which verifies it itself: Authorization,
// X-Purpose-Of-Use, X-Case-Ref and the request id (the caller's X-Request-Id, or a new one).
// Prints "ready <port>" on stdout once composed and listening.
import { randomUUID } from "node:crypto";
import http from "node:http";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from "@apollo/gateway";

const FORWARDED = ["authorization", "x-purpose-of-use", "x-case-ref"];
const args = process.argv.slice(2);
let port = 4000;
let healthPort = null;
const subgraphs = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--port") port = Number(args[++i]);
  else if (args[i] === "--health-port") healthPort = Number(args[++i]);
  else {
    const [name, url] = args[i].split(/=(.*)/s);
    subgraphs.push({ name, url });
  }
}

class IdentityForwarding extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    for (const name of FORWARDED) {
      const value = context.headers?.[name];
      if (value) request.http.headers.set(name, value);
    }
    request.http.headers.set("x-request-id", context.requestId);
  }
}

const gateway = new ApolloGateway({
  supergraphSdl: new IntrospectAndCompose({ subgraphs }),
  buildService: ({ url }) => new IdentityForwarding({ url }),
});
const server = new ApolloServer({ gateway, includeStacktraceInErrorResponses: false });
const { url } = await startStandaloneServer(server, {
  listen: { host: "127.0.0.1", port },
  context: async ({ req }) => {
    const given = req.headers["x-request-id"];
    const requestId = typeof given === "string" && /^[A-Za-z0-9._-]{1,64}$/.test(given) ? given : randomUUID();
    return { headers: req.headers, requestId };
  },
});
if (healthPort !== null) {
  // The compatibility suite waits for a router health check here.
  http
    .createServer((_, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"status":"UP"}');
    })
    .listen(healthPort, "127.0.0.1");
}
process.stdout.write(`ready ${new URL(url).port}\n`);
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.stop().then(() => process.exit(0)));
