// Drives @kafkajs/confluent-schema-registry against a floe schema registry.
// Run by schema/js_test.go: node test.mjs http://127.0.0.1:PORT
// Exits non-zero (with the failing check) on any mismatch.
import assert from 'node:assert/strict'
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry'

const url = process.argv[2]
if (!url) {
  console.error('usage: node test.mjs REGISTRY_URL')
  process.exit(2)
}

// avsc decodes records into class instances; compare plain data.
const plain = (v) => JSON.parse(JSON.stringify(v))

const userV1 = {
  type: 'record', name: 'User', namespace: 'js',
  fields: [{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }],
}
const userV2 = {
  ...userV1,
  fields: [...userV1.fields, { name: 'email', type: ['null', 'string'], default: null }],
}
const userBroken = { ...userV1, fields: [...userV1.fields, { name: 'age', type: 'int' }] }

async function main() {
  const registry = new SchemaRegistry({ host: url, retry: { retries: 0 } })
  const subject = 'js-users-value'

  // Register, twice: one id.
  const { id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(userV1) }, { subject })
  assert.ok(Number.isInteger(id) && id > 0, `id ${id}`)
  const again = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(userV1) }, { subject })
  assert.equal(again.id, id, 'same schema registered twice')

  // Encode and decode in the Confluent wire format.
  const payload = { id: 42, name: 'Ada' }
  const encoded = await registry.encode(id, payload)
  assert.equal(encoded[0], 0, 'magic byte')
  assert.equal(encoded.readInt32BE(1), id, 'schema id in the wire format')
  assert.deepEqual(plain(await registry.decode(encoded)), payload)

  // A fresh client has no cache: decoding fetches the schema by id from us.
  const fresh = new SchemaRegistry({ host: url, retry: { retries: 0 } })
  assert.deepEqual(plain(await fresh.decode(encoded)), payload)

  assert.equal(await registry.getLatestSchemaId(subject), id)
  assert.equal(await registry.getRegistryId(subject, 1), id)
  assert.equal(await registry.getRegistryIdBySchema(subject, { type: SchemaType.AVRO, schema: JSON.stringify(userV1) }), id)

  // Evolve compatibly; old data still decodes, new data too.
  const v2 = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(userV2) }, { subject })
  assert.notEqual(v2.id, id)
  assert.equal(await registry.getLatestSchemaId(subject), v2.id)
  const encodedV2 = await registry.encode(v2.id, { id: 7, name: 'Grace', email: 'g@example.com' })
  assert.deepEqual(plain(await fresh.decode(encodedV2)), { id: 7, name: 'Grace', email: 'g@example.com' })
  assert.deepEqual(plain(await fresh.decode(encoded)), payload)

  // An incompatible change is refused with HTTP 409.
  await assert.rejects(
    registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(userBroken) }, { subject }),
    (err) => err.status === 409,
  )

  // Schema references.
  const address = { type: 'record', name: 'Address', namespace: 'js', fields: [{ name: 'city', type: 'string' }] }
  const addr = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(address) }, { subject: 'js-address' })
  const customer = {
    type: 'record', name: 'Customer', namespace: 'js',
    fields: [{ name: 'id', type: 'long' }, { name: 'address', type: 'js.Address' }],
  }
  const cust = await registry.register({
    type: SchemaType.AVRO,
    schema: JSON.stringify(customer),
    references: [{ name: 'js.Address', subject: 'js-address', version: 1 }],
  }, { subject: 'js-customer-value' })
  assert.notEqual(cust.id, addr.id)
  const custPayload = { id: 1, address: { city: 'Lyon' } }
  const custEncoded = await registry.encode(cust.id, custPayload)
  assert.deepEqual(plain(await new SchemaRegistry({ host: url }).decode(custEncoded)), custPayload)

  // JSON Schema and Protobuf go through the same registry.
  const jsonSchema = { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] }
  const js = await registry.register({ type: SchemaType.JSON, schema: JSON.stringify(jsonSchema) }, { subject: 'js-json-value' })
  assert.deepEqual(plain(await fresh.decode(await registry.encode(js.id, { n: 3 }))), { n: 3 })
  const proto = 'syntax = "proto3";\npackage jsproto;\nmessage Point { int32 x = 1; int32 y = 2; }\n'
  const pb = await registry.register({ type: SchemaType.PROTOBUF, schema: proto }, { subject: 'js-proto-value' })
  const point = (await fresh.decode(await registry.encode(pb.id, { x: 1, y: 2 })))
  assert.deepEqual({ x: point.x, y: point.y }, { x: 1, y: 2 })

  console.log(`OK: ids avro=${id},${v2.id} address=${addr.id} customer=${cust.id} json=${js.id} protobuf=${pb.id}`)
}

main().catch((err) => {
  console.error('FAILED:', err)
  process.exit(1)
})
