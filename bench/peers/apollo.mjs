// Apollo Server (standalone, its built-in Node HTTP server) + DataLoader + better-sqlite3.
// POST /graphql on --port; GET /stats (statements and requests served) on --port + 1, because the
// standalone server answers GraphQL on every path.
//   node apollo.mjs --data var/bench-100000 --port 8766
import http from 'node:http'

import { ApolloServer } from '@apollo/server'
import { startStandaloneServer } from '@apollo/server/standalone'

import { contextFor, resolvers, start, stats, typeDefs } from './common.mjs'

const { port } = start()
const server = new ApolloServer({ typeDefs, resolvers })
await startStandaloneServer(server, {
  listen: { port, host: '127.0.0.1' },
  context: async ({ req }) => contextFor(req.headers)
})
http
  .createServer((req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(stats))
  })
  .listen(port + 1, '127.0.0.1')
console.log(`apollo listening on http://127.0.0.1:${port}/graphql (stats on :${port + 1})`)
