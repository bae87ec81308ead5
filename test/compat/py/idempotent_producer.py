#!/usr/bin/env python3
"""confluent-kafka-python (librdkafka) idempotent producer for floe's
idempotence test, run by test/compat/idempotence_test.go through a proxy
that breaks its connections:

  idempotent_producer.py produce BOOTSTRAP TOPIC COUNT PREFIX ACKS

Produces COUNT records with enable.idempotence=true, record n with key
"k-<n>" and the value idemValue(PREFIX, n) of the Go test: PREFIX, n,
"|", then (n*7919)%300 bytes of "abcdefghij" repeated. librdkafka retries
through the broken connections. Writes ACKS: per record, in order, the
big-endian int32 partition and int64 offset it was acknowledged at, or
-1 and -1 if its delivery failed (the errors go to stderr). Exits non-zero
only when it cannot run at all (or on a fatal producer error).
"""

import struct
import sys
import time

from confluent_kafka import KafkaError, KafkaException, Producer

TIMEOUT_S = 150
PAD = "abcdefghij" * 30


def value(prefix, n):
    return (prefix + str(n) + "|" + PAD[:(n * 7919) % 300]).encode("ascii")


def produce(bootstrap, topic, count, prefix, acks_path):
    fatal = []

    def on_error(err):
        # Broken connections are reported here too; only fatal errors
        # (the idempotence guarantee is lost) end the run.
        if err.fatal():
            fatal.append(str(err))

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        # Small requests, so that they fit between the proxy's cuts.
        "batch.size": 16384,
        "retry.backoff.ms": 20,
        "reconnect.backoff.ms": 10,
        "reconnect.backoff.max.ms": 200,
        "message.timeout.ms": TIMEOUT_S * 1000,
        "error_cb": on_error,
    })
    acks = [(-1, -1)] * count
    errors = {}

    def on_delivery(i):
        def cb(err, msg):
            if err is not None:
                errors[str(err)] = errors.get(str(err), 0) + 1
            else:
                acks[i] = (msg.partition(), msg.offset())
        return cb

    deadline = time.monotonic() + TIMEOUT_S
    for n in range(count):
        while not fatal:
            try:
                producer.produce(topic, key=b"k-%d" % n, value=value(prefix, n), on_delivery=on_delivery(n))
                break
            except BufferError:
                producer.poll(0.05)
            if time.monotonic() > deadline:
                print(f"idempotent_producer.py: timed out queueing record {n}", file=sys.stderr)
                sys.exit(1)
        producer.poll(0)
        if fatal:
            break
    while not fatal and len(producer) > 0 and time.monotonic() < deadline:
        producer.flush(0.5)
    if fatal:
        print(f"idempotent_producer.py: fatal producer error: {fatal[0]}", file=sys.stderr)
        sys.exit(1)
    remaining = len(producer)
    if remaining:
        print(f"idempotent_producer.py: {remaining} records still unacknowledged after {TIMEOUT_S}s", file=sys.stderr)
    for text, n in errors.items():
        print(f"idempotent_producer.py: {n} records failed: {text}", file=sys.stderr)
    with open(acks_path, "wb") as f:
        f.write(b"".join(struct.pack(">iq", p, o) for p, o in acks))
    ok = sum(1 for p, _ in acks if p >= 0)
    print(f"produced {count} records, {ok} acknowledged")


def main(argv):
    if len(argv) == 6 and argv[0] == "produce":
        try:
            produce(argv[1], argv[2], int(argv[3]), argv[4], argv[5])
        except KafkaException as e:
            print(f"idempotent_producer.py: kafka error: {e}", file=sys.stderr)
            sys.exit(1)
    else:
        print(f"idempotent_producer.py: usage: see the module docstring; got {argv}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
