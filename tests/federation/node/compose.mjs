// Compose subgraph SDLs with Apollo's own composition library.
// stdin: JSON [{"name", "url", "sdl"}]; stdout: JSON {"supergraphSdl", "apiSchema", "hints"} or {"errors"}.
import { composeServices } from "@apollo/composition";
import { printSchema } from "graphql";
import gql from "graphql-tag";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const services = JSON.parse(Buffer.concat(chunks).toString("utf8")).map((s) => ({
  name: s.name,
  url: s.url,
  typeDefs: gql(s.sdl),
}));
const result = composeServices(services);
if (result.errors) {
  process.stdout.write(JSON.stringify({ errors: result.errors.map((e) => e.message) }));
  process.exit(1);
}
const api = result.schema.toAPISchema().toGraphQLJSSchema();
process.stdout.write(
  JSON.stringify({
    supergraphSdl: result.supergraphSdl,
    apiSchema: printSchema(api),
    hints: (result.hints || []).map((h) => h.toString()),
  }),
);
