#!/usr/bin/env python3
"""confluent-kafka-python (librdkafka) client for floe's compatibility tests.

Run by test/compat/python_test.go; the Go test owns the data and checks
the results, this script only moves bytes through the client:

  compat_client.py produce BOOTSTRAP TOPIC CODEC INPUT ACKS
      Produces every record of INPUT (per record: big-endian int32 key
      length, key, int32 value length, value) with compression.type=CODEC
      and the Java-compatible murmur2 partitioner, then writes ACKS: per
      input record, in input order, the big-endian int32 partition and
      int64 offset the broker acknowledged.

  compat_client.py consume BOOTSTRAP TOPIC PARTITIONS COUNT OUTPUT [subscribe]
      Reads COUNT records from partitions 0..PARTITIONS-1 from the
      beginning, with assign() (a group.id is set, as librdkafka requires,
      but no group is joined) or, with "subscribe", as a group member.
      Writes OUTPUT: per record, big-endian int32 partition, int64 offset,
      int32 key length (-1: null), key, int32 value length (-1: null), value.

Exits non-zero with a message on stderr on any error or timeout.
"""

import struct
import sys
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaException,
                             Producer, TopicPartition)

TIMEOUT_S = 240


def fail(msg):
    print(f"compat_client.py: {msg}", file=sys.stderr)
    sys.exit(1)


def read_records(path):
    with open(path, "rb") as f:
        data = f.read()
    records, off = [], 0
    while off < len(data):
        (klen,) = struct.unpack_from(">i", data, off)
        off += 4
        key = data[off:off + klen]
        off += klen
        (vlen,) = struct.unpack_from(">i", data, off)
        off += 4
        value = data[off:off + vlen]
        off += vlen
        records.append((key, value))
    return records


def produce(bootstrap, topic, codec, input_path, acks_path):
    records = read_records(input_path)
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "compression.type": codec,
        "partitioner": "murmur2_random",
        "acks": "all",
        "linger.ms": 5,
        # Surface errors instead of retrying: a retried batch could be
        # reordered, and an error is what the test wants to see.
        "message.send.max.retries": 0,
    })
    acks = [None] * len(records)
    errors = []

    def on_delivery(i):
        def cb(err, msg):
            if err is not None:
                errors.append(f"record {i}: {err}")
            else:
                acks[i] = (msg.partition(), msg.offset())
        return cb

    deadline = time.monotonic() + TIMEOUT_S
    for i, (key, value) in enumerate(records):
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery(i))
                break
            except BufferError:
                producer.poll(0.05)
            if time.monotonic() > deadline:
                fail(f"timed out queueing record {i}")
        producer.poll(0)
    remaining = producer.flush(max(1.0, deadline - time.monotonic()))
    if remaining:
        fail(f"{remaining} records still unacknowledged after {TIMEOUT_S}s")
    if errors:
        fail(f"{len(errors)} of {len(records)} records failed; first: {errors[:5]}")
    out = bytearray()
    for i, ack in enumerate(acks):
        if ack is None:
            fail(f"record {i} has no delivery report")
        out += struct.pack(">iq", ack[0], ack[1])
    with open(acks_path, "wb") as f:
        f.write(out)
    print(f"produced {len(records)} records")


def pack_bytes(b):
    if b is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(b)) + b


def consume(bootstrap, topic, partitions, count, output_path, mode):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"compat-py-{topic}-{int(time.time() * 1000)}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "check.crcs": True,
    })
    if mode == "subscribe":
        consumer.subscribe([topic])
    else:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    out = bytearray()
    got = 0
    deadline = time.monotonic() + TIMEOUT_S
    while got < count:
        if time.monotonic() > deadline:
            fail(f"consumed {got} of {count} records in {TIMEOUT_S}s")
        for msg in consumer.consume(num_messages=10000, timeout=1.0):
            if msg.error() is not None:
                fail(f"consume error: {msg.error()}")
            out += struct.pack(">iq", msg.partition(), msg.offset())
            out += pack_bytes(msg.key())
            out += pack_bytes(msg.value())
            got += 1
    consumer.close()
    with open(output_path, "wb") as f:
        f.write(out)
    print(f"consumed {got} records")


def main(argv):
    try:
        if len(argv) == 6 and argv[0] == "produce":
            produce(argv[1], argv[2], argv[3], argv[4], argv[5])
        elif len(argv) in (6, 7) and argv[0] == "consume":
            mode = argv[6] if len(argv) == 7 else "assign"
            consume(argv[1], argv[2], int(argv[3]), int(argv[4]), argv[5], mode)
        else:
            fail(f"usage: see the module docstring; got {argv}")
    except KafkaException as e:
        fail(f"kafka error: {e}")


if __name__ == "__main__":
    main(sys.argv[1:])
