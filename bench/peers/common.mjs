// What both Node peers share: the SDL, the SQLite statements, the per-request DataLoaders and the
// resolvers. They read the same SQLite files as CityGraph (read-only) and answer the benchmark's
// reference queries with the same JSON; no policy, no masking, no audit (raw-speed anchors).
//
// Statements are prepared once at start-up. A batch of keys is bound as one JSON array and
// unpacked by SQLite (`IN (SELECT value FROM json_each(?))`), so one prepared statement serves any
// batch size. Every statement execution increments `stats.statements` (served on GET /stats).
import path from 'node:path'
import { parseArgs } from 'node:util'

import Database from 'better-sqlite3'
import DataLoader from 'dataloader'
import { GraphQLScalarType } from 'graphql'

// Names and types copied from `citygraph sdl`, only the fields the reference queries use.
export const typeDefs = /* GraphQL */ `
  scalar USCC
  scalar Adcode
  scalar Date
  scalar DateTime
  scalar Decimal

  enum EnterpriseStatus { EXISTING REVOKED CANCELLED }
  enum LicenseType { BUSINESS_LICENSE FOOD_BUSINESS CONSTRUCTION ROAD_TRANSPORT RESIDENT_ID DRIVING_LICENSE }
  enum LicenseStatus { VALID EXPIRED REVOKED SUSPENDED }
  enum CreditRecordKind { RED_LIST BLACK_LIST ABNORMAL_OPERATION ADMINISTRATIVE_PENALTY ADMINISTRATIVE_LICENSE }

  type Query {
    enterprise(uscc: USCC!): Enterprise
    enterprises(first: Int = null, after: String = null): EnterpriseConnection!
    creditRecords(first: Int = null, after: String = null): CreditRecordConnection!
  }

  type Enterprise {
    uscc: USCC!
    name: String!
    address: String!
    districtCode: Adcode!
    industry: String!
    status: EnterpriseStatus!
    legalRepresentative: Person
    licenses: [License!]!
    credit: CreditProfile
  }

  type Person {
    idNumber: String
    name: String
  }

  type License {
    number: String
    type: LicenseType!
    status: LicenseStatus!
    validUntil: Date
  }

  type CreditProfile {
    rating: String!
    score: Int
    assessedAt: DateTime
    records: [CreditRecord!]!
  }

  type CreditRecord {
    id: ID!
    kind: CreditRecordKind!
    title: String!
    authority: String!
    decisionDate: Date!
    publicityEndsOn: Date!
    districtCode: Adcode!
    amount: Decimal
    legalRepIdNumber: String
  }

  type PageInfo {
    hasNextPage: Boolean!
    endCursor: String
  }

  type EnterpriseConnection {
    nodes: [Enterprise!]!
    pageInfo: PageInfo!
  }

  type CreditRecordConnection {
    nodes: [CreditRecord!]!
    pageInfo: PageInfo!
  }
`

export const stats = { statements: 0, requests: 0 }

const DEFAULT_PAGE_SIZE = 50
const MAX_PAGE_SIZE = 500

// Whole rows, as CityGraph's connectors read them, with camelCase aliases for the schema's names.
const ENTERPRISE = `uscc, name, legal_rep_id_number AS legalRepIdNumber, address, district_code AS districtCode,
  industry_code AS industryCode, industry_name AS industry, registered_capital AS registeredCapital,
  established_on AS establishedOn, status, phone`
const PERSON = `id_number AS idNumber, name, birth_date AS birthDate, phone, address, district_code AS districtCode`
const LICENSE = `l.number, l.type, i.name AS issuer, l.issued_on AS issuedOn, l.valid_from AS validFrom,
  l.valid_until AS validUntil, l.status, l.scope, l.district_code AS districtCode, l.holder_uscc AS holderUscc,
  l.holder_id_number AS holderIdNumber`
const PROFILE = `uscc, rating, score, assessed_at AS assessedAt`
const RECORD = `id, uscc, kind, title, content, authority, decision_number AS decisionNumber,
  decision_date AS decisionDate, publicity_start AS publicityStart, publicity_end AS publicityEndsOn,
  district_code AS districtCode, amount, legal_rep_name AS legalRepName,
  legal_rep_id_number AS legalRepIdNumber, internal_note AS internalNote`
const KEYS = 'IN (SELECT value FROM json_each(?))'
const RECORD_ORDER = 'ORDER BY decision_date DESC, id DESC'
const AFTER_RECORD = '(decision_date < ? OR (decision_date = ? AND id < ?))'

function prepareAll (dataDir) {
  const options = { readonly: true, fileMustExist: true }
  const license = new Database(path.join(dataDir, 'license.sqlite'), options)
  const credit = new Database(path.join(dataDir, 'credit.sqlite'), options)
  return {
    enterprises: license.prepare(`SELECT ${ENTERPRISE} FROM enterprises WHERE uscc ${KEYS}`),
    enterprisePage: license.prepare(`SELECT ${ENTERPRISE} FROM enterprises ORDER BY uscc LIMIT ?`),
    enterprisePageAfter: license.prepare(
      `SELECT ${ENTERPRISE} FROM enterprises WHERE uscc > ? ORDER BY uscc LIMIT ?`),
    persons: license.prepare(`SELECT ${PERSON} FROM persons WHERE id_number ${KEYS}`),
    licensesByHolder: license.prepare(`SELECT ${LICENSE} FROM licenses l JOIN issuers i ON i.code = l.issuer_code
      WHERE l.holder_uscc ${KEYS} ORDER BY l.holder_uscc, l.issued_on DESC, l.number`),
    profiles: credit.prepare(`SELECT ${PROFILE} FROM credit_profiles WHERE uscc ${KEYS}`),
    recordsByUscc: credit.prepare(`SELECT ${RECORD} FROM credit_records WHERE uscc ${KEYS} ${RECORD_ORDER}`),
    recordPage: credit.prepare(`SELECT ${RECORD} FROM credit_records ${RECORD_ORDER} LIMIT ?`),
    recordPageAfter: credit.prepare(
      `SELECT ${RECORD} FROM credit_records WHERE ${AFTER_RECORD} ${RECORD_ORDER} LIMIT ?`),
    recordPageDistrict: credit.prepare(
      `SELECT ${RECORD} FROM credit_records WHERE district_code = ? ${RECORD_ORDER} LIMIT ?`),
    recordPageDistrictAfter: credit.prepare(
      `SELECT ${RECORD} FROM credit_records WHERE district_code = ? AND ${AFTER_RECORD} ${RECORD_ORDER} LIMIT ?`)
  }
}

let sql = null

function all (statement, ...params) {
  stats.statements++
  return statement.all(...params)
}

// One row (or null) per key, in key order.
function byKey (statement, column, keys) {
  const found = new Map()
  for (const row of all(statement, JSON.stringify(keys))) found.set(row[column], row)
  return keys.map((k) => found.get(k) ?? null)
}

// All rows per key, in key order (the statement's order within a key).
function groupedBy (statement, column, keys) {
  const groups = new Map(keys.map((k) => [k, []]))
  for (const row of all(statement, JSON.stringify(keys))) groups.get(row[column]).push(row)
  return keys.map((k) => groups.get(k))
}

/** One DataLoader per (table, key) for one request. */
export function createLoaders () {
  return {
    enterprise: new DataLoader(async (keys) => byKey(sql.enterprises, 'uscc', keys)),
    person: new DataLoader(async (keys) => byKey(sql.persons, 'idNumber', keys)),
    licenses: new DataLoader(async (keys) => groupedBy(sql.licensesByHolder, 'holderUscc', keys)),
    profile: new DataLoader(async (keys) => byKey(sql.profiles, 'uscc', keys)),
    records: new DataLoader(async (keys) => groupedBy(sql.recordsByUscc, 'uscc', keys))
  }
}

// CityGraph's cursors (connectors/sql.py): base64url("v1|part|part"), unpadded.
function encodeCursor (...parts) {
  return Buffer.from(['v1', ...parts].join('|')).toString('base64url')
}

function decodeCursor (cursor, count) {
  const parts = Buffer.from(cursor, 'base64url').toString().split('|')
  if (parts.length !== count + 1 || parts[0] !== 'v1') throw new Error('after: not a cursor issued by this API')
  return parts.slice(1)
}

function pageSize (first) {
  if (first === null || first === undefined) return DEFAULT_PAGE_SIZE
  if (first < 1 || first > MAX_PAGE_SIZE) throw new Error(`first must be between 1 and ${MAX_PAGE_SIZE}`)
  return first
}

function connection (rows, size, cursorOf) {
  const nodes = rows.length > size ? rows.slice(0, size) : rows
  const last = nodes[nodes.length - 1]
  return { nodes, pageInfo: { hasNextPage: rows.length > size, endCursor: last ? cursorOf(last) : null } }
}

export const resolvers = {
  // SQLite keeps "2026-08-07 20:13:31.000000" (UTC); CityGraph serialises Python's isoformat().
  DateTime: new GraphQLScalarType({
    name: 'DateTime',
    serialize (value) {
      const [day, time] = value.split(' ')
      const [clock, micros] = time.split('.')
      const fraction = micros && Number(micros) !== 0 ? `.${micros}` : ''
      return `${day}T${clock}${fraction}+00:00`
    }
  }),
  // NUMERIC(14, 2) comes back from SQLite as a number; CityGraph prints the Decimal with 2 places.
  Decimal: new GraphQLScalarType({
    name: 'Decimal',
    serialize: (value) => (typeof value === 'number' ? value.toFixed(2) : String(value))
  }),
  Query: {
    enterprise: (_, { uscc }, ctx) => ctx.loaders.enterprise.load(uscc),
    enterprises (_, { first, after }) {
      const size = pageSize(first)
      const rows = after
        ? all(sql.enterprisePageAfter, decodeCursor(after, 1)[0], size + 1)
        : all(sql.enterprisePage, size + 1)
      return connection(rows, size, (e) => encodeCursor(e.uscc))
    },
    // CityGraph takes the district from the officer's policy; the peers from the X-District header.
    creditRecords (_, { first, after }, ctx) {
      const size = pageSize(first)
      const district = ctx.district ? [ctx.district] : []
      let rows
      if (after) {
        const [day, id] = decodeCursor(after, 2)
        const statement = ctx.district ? sql.recordPageDistrictAfter : sql.recordPageAfter
        rows = all(statement, ...district, day, day, Number(id), size + 1)
      } else {
        rows = all(ctx.district ? sql.recordPageDistrict : sql.recordPage, ...district, size + 1)
      }
      return connection(rows, size, (r) => encodeCursor(r.decisionDate, r.id))
    }
  },
  Enterprise: {
    legalRepresentative: (e, _, ctx) => ctx.loaders.person.load(e.legalRepIdNumber),
    licenses: (e, _, ctx) => ctx.loaders.licenses.load(e.uscc),
    credit: (e, _, ctx) => ctx.loaders.profile.load(e.uscc)
  },
  CreditProfile: {
    records: (p, _, ctx) => ctx.loaders.records.load(p.uscc)
  }
}

/** The request context both peers build: fresh loaders, and the district a real token would carry. */
export function contextFor (headers) {
  stats.requests++
  const district = headers['x-district']
  return { loaders: createLoaders(), district: typeof district === 'string' && district ? district : null }
}

/** Command line: --data DIR --port N; opens the databases and prepares every statement. */
export function start () {
  const { values } = parseArgs({
    options: { data: { type: 'string' }, port: { type: 'string', default: '8766' } }
  })
  if (!values.data) throw new Error('--data DIR (the folder with credit.sqlite and license.sqlite) is required')
  sql = prepareAll(values.data)
  return { port: Number(values.port) }
}
