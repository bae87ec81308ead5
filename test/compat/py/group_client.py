#!/usr/bin/env python3
"""confluent-kafka-python consumer-group member for floe's group tests.

Run by test/compat/groups_test.go, which starts several of these in one
group, stops them (SIGTERM: a clean close that leaves the group) or kills
them (SIGKILL: a crash), and checks their logs afterwards:

  group_client.py consume BOOTSTRAP TOPIC GROUP NAME LOG PROCESS_MS STRATEGY

Subscribes to TOPIC in GROUP with partition.assignment.strategy STRATEGY
("range,roundrobin", librdkafka's eager default, or "cooperative-sticky",
incremental), auto commit off. For every batch (from consume(), or with
cooperative-sticky gathered with poll(), see below) it logs each record,
"processes" the batch (sleeps PROCESS_MS, so that a kill is likely to
land between processing and commit), then commits the next offset of
every partition in the batch synchronously and logs the outcome. A
revocation first processes and commits what was polled; a lost
partition's polled records are dropped unprocessed. It runs until
SIGTERM, then closes the consumer (revoking its partitions and leaving
the group) and exits 0.

LOG gets one line per event, each starting with its kind and the time
(CLOCK_MONOTONIC nanoseconds, which every process on the machine shares,
so the test can order events across consumers):

  S t                 started
  A t p,p,...         partitions assigned (rebalance callback; with an
                      eager strategy the whole assignment, with
                      cooperative-sticky the partitions added)
  V t p,p,...         partitions revoked
  L t p,p,...         partitions lost (librdkafka >= 1.6 on_lost)
  R t p o value       a record processed (values are ASCII)
  C t p o             offset o of partition p committed
  F t error           a commit failed
  E t error           a consume error
  X t                 closed, exiting

The log is flushed before every commit, so a record whose commit was
logged is always logged itself, even when the process is killed.
"""

import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition


def now():
    return time.monotonic_ns()


def parts(partitions):
    return ",".join(str(tp.partition) for tp in partitions) or "-"


def consume(bootstrap, topic, group, name, log_path, process_ms, strategy):
    log = open(log_path, "w", buffering=1 << 16)

    def event(kind, *fields):
        log.write(" ".join([kind, str(now())] + [str(f) for f in fields]) + "\n")

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))

    event("S")
    log.flush()
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "client.id": name,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "check.crcs": True,
        # A killed member is noticed after this, not the default 45 s.
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "fetch.wait.max.ms": 100,
        "partition.assignment.strategy": strategy,
    })

    cooperative = strategy == "cooperative-sticky"
    batch = []  # polled, not yet processed (cooperative mode)

    def process(msgs, sleep=True):
        """Logs the records, "processes" them and commits their offsets."""
        next_offsets = {}
        for msg in msgs:
            if msg.error() is not None:
                event("E", str(msg.error()).replace("\n", " "))
                continue
            value = msg.value()
            event("R", msg.partition(), msg.offset(), value.decode("ascii") if value is not None else "<null>")
            next_offsets[msg.partition()] = msg.offset() + 1
        if not next_offsets:
            return
        log.flush()
        if sleep:
            time.sleep(int(process_ms) / 1000)
        offsets = [TopicPartition(topic, p, o) for p, o in sorted(next_offsets.items())]
        try:
            result = consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            event("F", str(e).replace("\n", " "))
            log.flush()
            return
        for tp in result or []:
            if tp.error is not None:
                event("F", f"partition {tp.partition}: {tp.error}".replace("\n", " "))
            else:
                event("C", tp.partition, tp.offset)
        log.flush()

    def on_assign(c, partitions):
        event("A", parts(partitions))
        log.flush()

    def on_revoke(c, partitions):
        # Partitions are about to go: finish what was polled of them.
        process(batch, sleep=False)
        batch.clear()
        event("V", parts(partitions))
        log.flush()

    def on_lost(c, partitions):
        # They may be someone else's already: what was polled of them is
        # dropped unprocessed (its new owner reads it again).
        lost = {tp.partition for tp in partitions}
        batch[:] = [m for m in batch if m.partition() not in lost]
        event("L", parts(partitions))
        log.flush()

    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    while not stop:
        if not cooperative:
            process(consumer.consume(num_messages=500, timeout=0.2))
            continue
        # librdkafka 2.0's batch consume() drops queued records of the
        # partitions it keeps across a cooperative rebalance (its fetch
        # queue is purged while the fetcher goes on from further ahead: a
        # client bug, fixed in later librdkafka), so here a batch is
        # gathered with poll(), which a rebalance callback may interrupt.
        deadline = time.monotonic() + 0.2
        while len(batch) < 500 and not stop:
            msg = consumer.poll(max(0.0, deadline - time.monotonic()))
            if msg is None:
                break
            batch.append(msg)
        msgs = batch[:]
        batch.clear()
        process(msgs)
    consumer.close()
    event("X")
    log.close()


def main(argv):
    if len(argv) == 8 and argv[0] == "consume":
        consume(*argv[1:])
    else:
        print(f"group_client.py: usage: see the module docstring; got {argv}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
