// Fastify + Mercurius with graphql-jit (`jit: 1`: a document is compiled on its second request),
// the same SDL, resolvers and per-request DataLoaders as the Apollo peer. GET /stats on the same port.
//   node mercurius.mjs --data var/bench-100000 --port 8767
import Fastify from 'fastify'
import mercurius from 'mercurius'

import { contextFor, resolvers, start, stats, typeDefs } from './common.mjs'

const { port } = start()
const app = Fastify({ logger: false })
app.register(mercurius, {
  schema: typeDefs,
  resolvers,
  jit: 1,
  path: '/graphql',
  context: (request) => contextFor(request.headers)
})
app.get('/stats', async () => stats)
await app.listen({ port, host: '127.0.0.1' })
console.log(`mercurius listening on http://127.0.0.1:${port}/graphql`)
