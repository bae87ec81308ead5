// Package compat checks floe against real Kafka clients written by others —
// franz-go, kcat (librdkafka), confluent-kafka-python and kafkajs — with
// every compression codec, byte for byte, and checks the durability
// invariants against a floe process that is killed, restarted and has its
// disk deleted, and against an object store that fails uploads.
//
// The tests run the real binary (bin/floe, `make build`) through
// internal/testutil/floeproc over a real S3 server (versitygw); a missing
// tool fails the test with the command that installs it.
package compat
