#!/usr/bin/env node
// kafkajs consumer-group member for floe's group tests, run by
// test/compat/groups_test.go:
//
//   node group_client.js consume BOOTSTRAP TOPIC GROUP COUNT OUTPUT
//     Joins GROUP on TOPIC (from the beginning when the group has no
//     committed offset, else from the committed offsets), and after every
//     batch commits the offset after its last record explicitly
//     (autoCommit off). Once COUNT records arrived it waits a moment more,
//     so that records beyond COUNT (which the test treats as an error)
//     show up too, then leaves the group. Writes OUTPUT: one line
//     "partition offset value" per record, values being ASCII.
//
// Exits non-zero with a message on stderr on any error or timeout.
'use strict'

const fs = require('fs')
const { Kafka, logLevel, CompressionTypes, CompressionCodecs } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')

// franz-go, which produces the test's records, compresses with snappy by
// default; kafkajs reads it with this plugin.
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec

const TIMEOUT_MS = 120_000
// How long to keep consuming after COUNT records, to catch extra ones.
const SETTLE_MS = 1500

function fail(msg) {
  process.stderr.write(`group_client.js: ${msg}\n`)
  process.exit(1)
}

const logCreator = () => ({ namespace, level, label, log }) => {
  const { message, ...extra } = log
  process.stderr.write(`${label} [${namespace}] ${message} ${JSON.stringify(extra)}\n`)
}

async function consume(bootstrap, topic, group, count, outputPath) {
  const kafka = new Kafka({
    clientId: 'floe-compat-group',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    logCreator,
    retry: { retries: 3 },
  })
  const consumer = kafka.consumer({ groupId: group })
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart) fail(`consumer crashed: ${payload.error && payload.error.stack}`)
  })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  const lines = []
  let commits = 0
  let reached
  const countReached = new Promise(resolve => {
    reached = resolve
  })
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, heartbeat }) => {
      if (batch.messages.length === 0) return
      for (const m of batch.messages) {
        const value = m.value === null ? '<null>' : m.value.toString('ascii')
        lines.push(`${batch.partition} ${m.offset} ${value}\n`)
      }
      const last = BigInt(batch.messages[batch.messages.length - 1].offset)
      await consumer.commitOffsets([{ topic, partition: batch.partition, offset: String(last + 1n) }])
      commits++
      await heartbeat()
      if (lines.length >= count) reached()
    },
  })
  await countReached
  await new Promise(resolve => setTimeout(resolve, SETTLE_MS))
  await consumer.disconnect()
  fs.writeFileSync(outputPath, lines.join(''))
  console.log(`consumed ${lines.length} records, ${commits} commits`)
}

async function main(argv) {
  const timer = setTimeout(() => fail(`timed out after ${TIMEOUT_MS} ms`), TIMEOUT_MS)
  if (argv.length === 6 && argv[0] === 'consume') {
    await consume(argv[1], argv[2], argv[3], Number(argv[4]), argv[5])
  } else {
    fail(`usage: see the header comment; got ${JSON.stringify(argv)}`)
  }
  clearTimeout(timer)
}

main(process.argv.slice(2)).catch(e => fail(e && e.stack ? e.stack : String(e)))
