// Drives floe's Iceberg REST catalog with iceberg-js, a JavaScript REST
// catalog client: OAuth2 client credentials, namespaces, create, load,
// commit (including a conflicting one), list, rename and drop.
// Run by catalog/js_test.go; exits non-zero with a message on any failure.
//
// Environment: CATALOG_URL, CATALOG_CLIENT_ID, CATALOG_CLIENT_SECRET.
import assert from 'node:assert/strict'
import { IcebergRestCatalog, IcebergError } from 'iceberg-js'

const base = process.env.CATALOG_URL
assert.ok(base, 'CATALOG_URL is required')

// iceberg-js takes a bearer token; get one with the client-credentials flow.
const tokenResponse = await fetch(`${base}/v1/oauth/tokens`, {
  method: 'POST',
  headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: process.env.CATALOG_CLIENT_ID,
    client_secret: process.env.CATALOG_CLIENT_SECRET,
    scope: 'catalog',
  }),
})
assert.equal(tokenResponse.status, 200, 'token endpoint status')
const { access_token: token } = await tokenResponse.json()

// Without a token the catalog refuses.
const anonymous = new IcebergRestCatalog({ baseUrl: base })
await assert.rejects(anonymous.listNamespaces(), (err) => err instanceof IcebergError && err.status === 401)

// warehouse makes iceberg-js read the prefix from /v1/config.
const catalog = new IcebergRestCatalog({
  baseUrl: base,
  warehouse: 'floe',
  auth: { type: 'bearer', token },
})
const config = await catalog.loadConfig()
assert.equal(config.overrides.prefix, 'floe')

await catalog.createNamespace({ namespace: ['js'] }, { properties: { owner: 'node' } })
const { namespaces } = await catalog.listNamespaces()
assert.deepEqual(namespaces.map((n) => n.namespace), [['js']])

const id = { namespace: ['js'], name: 'events' }
const created = await catalog.createTable({ namespace: ['js'] }, {
  name: 'events',
  schema: {
    type: 'struct',
    'schema-id': 0,
    fields: [
      { id: 1, name: 'id', type: 'long', required: true },
      { id: 2, name: 'payload', type: 'string', required: false },
    ],
  },
  'partition-spec': { 'spec-id': 0, fields: [] },
  'write-order': { 'order-id': 0, fields: [] },
  properties: { 'created-by': 'iceberg-js' },
})
assert.equal(created.properties['created-by'], 'iceberg-js')

const loaded = await catalog.loadTableResult(id)
assert.ok(loaded['metadata-location'].endsWith('.metadata.json'), 'metadata-location')
const meta = loaded.metadata
assert.equal(meta['current-schema-id'], 0)

// Commit: add a column as schema 1, guarded by the current schema id.
const commit = await catalog.commitTable(id, {
  requirements: [
    { type: 'assert-table-uuid', uuid: meta['table-uuid'] },
    { type: 'assert-current-schema-id', 'current-schema-id': 0 },
  ],
  updates: [
    {
      action: 'add-schema',
      schema: {
        type: 'struct',
        'schema-id': 1,
        fields: [
          { id: 1, name: 'id', type: 'long', required: true },
          { id: 2, name: 'payload', type: 'string', required: false },
          { id: 3, name: 'source', type: 'string', required: false },
        ],
      },
      'last-column-id': 3,
    },
    { action: 'set-current-schema', 'schema-id': -1 },
    { action: 'set-properties', updates: { owner: 'node' } },
  ],
})
assert.notEqual(commit['metadata-location'], loaded['metadata-location'])

const after = await catalog.loadTable(id)
assert.equal(after['current-schema-id'], 1)
assert.equal(after.properties.owner, 'node')
const current = after.schemas.find((s) => s['schema-id'] === after['current-schema-id'])
assert.deepEqual(current.fields.map((f) => f.name), ['id', 'payload', 'source'])

// The same guarded commit again is stale now: 409 CommitFailedException,
// and nothing changes.
await assert.rejects(
  catalog.commitTable(id, {
    requirements: [{ type: 'assert-current-schema-id', 'current-schema-id': 0 }],
    updates: [{ action: 'set-properties', updates: { owner: 'stale' } }],
  }),
  (err) => err instanceof IcebergError && err.status === 409 && err.icebergType === 'CommitFailedException',
)
assert.equal((await catalog.loadTable(id)).properties.owner, 'node')

const { identifiers } = await catalog.listTables({ namespace: ['js'] })
assert.deepEqual(identifiers, [id])

await catalog.renameTable({ source: id, destination: { namespace: ['js'], name: 'renamed' } })
await assert.rejects(catalog.loadTable(id), (err) => err instanceof IcebergError && err.status === 404)
await catalog.dropTable({ namespace: ['js'], name: 'renamed' })
await catalog.dropNamespace({ namespace: ['js'] })
assert.deepEqual((await catalog.listNamespaces()).namespaces, [])

console.log('iceberg-js: ok')
