#!/usr/bin/env node
// kafkajs client for floe's compatibility tests, run by
// test/compat/kafkajs_test.go. The Go test owns the data and checks the
// results; this script only moves bytes through the client:
//
//   node compat_client.js produce BOOTSTRAP TOPIC CODEC INPUT ACKS
//     Produces every record of INPUT (per record: big-endian int32 key
//     length, key, int32 value length, value) with compression CODEC
//     (none, gzip, snappy, lz4, zstd) and kafkajs's default (Java
//     compatible, murmur2) partitioner, acks=all. Writes ACKS: per input
//     record, in input order, big-endian int32 partition, int64 offset.
//
//   node compat_client.js consume BOOTSTRAP TOPIC COUNT OUTPUT
//     Joins a fresh consumer group on TOPIC from the beginning (kafkajs
//     has no group-less consumer) and reads COUNT records. Writes OUTPUT:
//     per record, big-endian int32 partition, int64 offset, int32 key
//     length (-1: null), key, int32 value length (-1: null), value.
//
// Exits non-zero with a message on stderr on any error or timeout.
'use strict'

const fs = require('fs')
const {
  Kafka,
  CompressionTypes,
  CompressionCodecs,
  Partitioners,
  logLevel,
} = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const LZ4Codec = require('kafkajs-lz4')
const zstd = require('@mongodb-js/zstd')

// kafkajs ships gzip only; the other codecs are plugins. @kafkajs/zstd
// needs cppzst, which does not build on Node 20, so zstd is a small codec
// over @mongodb-js/zstd (prebuilt N-API binaries).
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  compress: encoder => zstd.compress(encoder.buffer, 3),
  decompress: buffer => zstd.decompress(buffer),
})

const codecs = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}

const TIMEOUT_MS = 240_000
// Records per producer.send: one produce request, about 4 MB.
const SEND_CHUNK = 4000

function fail(msg) {
  process.stderr.write(`compat_client.js: ${msg}\n`)
  process.exit(1)
}

// Logs go to stderr: stdout is for results.
const logCreator = () => ({ namespace, level, label, log }) => {
  const { message, ...extra } = log
  process.stderr.write(`${label} [${namespace}] ${message} ${JSON.stringify(extra)}\n`)
}

function client(bootstrap) {
  return new Kafka({
    clientId: 'floe-compat',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    logCreator,
    retry: { retries: 3 },
  })
}

function readRecords(path) {
  const data = fs.readFileSync(path)
  const records = []
  let off = 0
  while (off < data.length) {
    const klen = data.readInt32BE(off)
    off += 4
    const key = data.subarray(off, off + klen)
    off += klen
    const vlen = data.readInt32BE(off)
    off += 4
    const value = data.subarray(off, off + vlen)
    off += vlen
    records.push({ key, value })
  }
  return records
}

async function produce(bootstrap, topic, codec, inputPath, acksPath) {
  if (!(codec in codecs)) fail(`unknown codec ${codec}`)
  const records = readRecords(inputPath)
  const kafka = client(bootstrap)
  // The partitioner is re-run below to learn each record's partition.
  const admin = kafka.admin()
  await admin.connect()
  const meta = await admin.fetchTopicMetadata({ topics: [topic] })
  await admin.disconnect()
  const partitionMetadata = meta.topics[0].partitions
  const partitionOf = Partitioners.DefaultPartitioner()

  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  })
  await producer.connect()
  const acks = Buffer.alloc(records.length * 12)
  for (let start = 0; start < records.length; start += SEND_CHUNK) {
    const chunk = records.slice(start, start + SEND_CHUNK)
    const result = await producer.send({
      topic,
      acks: -1,
      compression: codecs[codec],
      messages: chunk,
    })
    // kafkajs reports one base offset per partition; its messages of a
    // partition were written in chunk order from there.
    const base = new Map()
    for (const r of result) {
      if (r.errorCode !== 0) fail(`partition ${r.partition}: error code ${r.errorCode}`)
      base.set(r.partition, BigInt(r.baseOffset))
    }
    const next = new Map()
    for (let i = 0; i < chunk.length; i++) {
      const p = partitionOf({ topic, partitionMetadata, message: chunk[i] })
      const off = (next.get(p) ?? base.get(p))
      if (off === undefined) fail(`record ${start + i}: no acknowledgement for its partition ${p}`)
      next.set(p, off + 1n)
      acks.writeInt32BE(p, (start + i) * 12)
      acks.writeBigInt64BE(off, (start + i) * 12 + 4)
    }
  }
  await producer.disconnect()
  fs.writeFileSync(acksPath, acks)
  console.log(`produced ${records.length} records`)
}

function packBytes(b) {
  const len = Buffer.alloc(4)
  if (b === null || b === undefined) {
    len.writeInt32BE(-1)
    return [len]
  }
  len.writeInt32BE(b.length)
  return [len, b]
}

async function consume(bootstrap, topic, count, outputPath) {
  const consumer = client(bootstrap).consumer({
    groupId: `compat-js-${topic}-${Date.now()}`,
    maxBytesPerPartition: 8 << 20,
  })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  const parts = []
  let got = 0
  let finish
  const done = new Promise(resolve => {
    finish = resolve
  })
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        const hdr = Buffer.alloc(12)
        hdr.writeInt32BE(batch.partition, 0)
        hdr.writeBigInt64BE(BigInt(m.offset), 4)
        parts.push(hdr, ...packBytes(m.key), ...packBytes(m.value))
        got++
      }
      if (got >= count) finish()
    },
  })
  await done
  await consumer.disconnect()
  fs.writeFileSync(outputPath, Buffer.concat(parts))
  console.log(`consumed ${got} records`)
}

async function main(argv) {
  const timer = setTimeout(() => fail(`timed out after ${TIMEOUT_MS} ms`), TIMEOUT_MS)
  if (argv.length === 6 && argv[0] === 'produce') {
    await produce(argv[1], argv[2], argv[3], argv[4], argv[5])
  } else if (argv.length === 5 && argv[0] === 'consume') {
    await consume(argv[1], argv[2], Number(argv[3]), argv[4])
  } else {
    fail(`usage: see the header comment; got ${JSON.stringify(argv)}`)
  }
  clearTimeout(timer)
}

main(process.argv.slice(2)).catch(e => fail(e && e.stack ? e.stack : String(e)))
