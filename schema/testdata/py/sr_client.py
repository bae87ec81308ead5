"""Drives confluent-kafka-python's SchemaRegistryClient against floe's registry.

Run by schema/clients_test.go: /usr/bin/python3 sr_client.py http://127.0.0.1:PORT
Any failed check raises, so the exit status is non-zero.
"""
import json
import sys

from confluent_kafka.schema_registry import (Schema, SchemaReference,
                                             SchemaRegistryClient)
from confluent_kafka.schema_registry.error import SchemaRegistryError


def expect_error(status, code, fn, *args):
    try:
        fn(*args)
    except SchemaRegistryError as e:
        assert (e.http_status_code, e.error_code) == (status, code), \
            "got HTTP %s error_code %s (%s), want %s/%s" % (
                e.http_status_code, e.error_code, e.error_message, status, code)
        return
    raise AssertionError("%s%r succeeded, want error %s" % (fn.__name__, args, code))


def main(url):
    user_v1 = {"type": "record", "name": "User", "namespace": "py",
               "fields": [{"name": "id", "type": "long"}]}
    user_v2 = dict(user_v1, fields=user_v1["fields"] + [
        {"name": "email", "type": ["null", "string"], "default": None}])
    user_bad = dict(user_v1, fields=user_v1["fields"] + [{"name": "age", "type": "int"}])

    sr = SchemaRegistryClient({"url": url})
    subject = "py-users-value"

    schema_id = sr.register_schema(subject, Schema(json.dumps(user_v1), "AVRO"))
    assert isinstance(schema_id, int) and schema_id > 0, schema_id
    # A second client has no cache: the same schema gets the same id from the server.
    sr2 = SchemaRegistryClient({"url": url})
    assert sr2.register_schema(subject, Schema(json.dumps(user_v1, indent=2), "AVRO")) == schema_id

    fetched = sr2.get_schema(schema_id)
    assert fetched.schema_type == "AVRO", fetched.schema_type
    assert json.loads(fetched.schema_str) == user_v1, fetched.schema_str

    registered = sr2.lookup_schema(subject, Schema(json.dumps(user_v1), "AVRO"))
    assert (registered.schema_id, registered.subject, registered.version) == (schema_id, subject, 1)

    assert sr2.get_compatibility() == "BACKWARD"
    assert sr2.test_compatibility(subject, Schema(json.dumps(user_v2), "AVRO")) is True
    assert sr2.test_compatibility(subject, Schema(json.dumps(user_bad), "AVRO")) is False
    v2_id = sr2.register_schema(subject, Schema(json.dumps(user_v2), "AVRO"))
    assert v2_id != schema_id
    expect_error(409, 409, sr2.register_schema, subject, Schema(json.dumps(user_bad), "AVRO"))

    latest = sr2.get_latest_version(subject)
    assert (latest.schema_id, latest.version) == (v2_id, 2), (latest.schema_id, latest.version)
    assert json.loads(latest.schema.schema_str) == user_v2
    assert sr2.get_version(subject, 1).schema_id == schema_id
    assert sr2.get_versions(subject) == [1, 2]

    sr2.set_compatibility(subject, "full")
    assert sr2.get_compatibility(subject) == "FULL"
    expect_error(422, 42203, sr2.set_compatibility, subject, "sideways")

    # References.
    address = {"type": "record", "name": "Address", "namespace": "py",
               "fields": [{"name": "city", "type": "string"}]}
    sr2.register_schema("py-address", Schema(json.dumps(address), "AVRO"))
    customer = {"type": "record", "name": "Customer", "namespace": "py",
                "fields": [{"name": "address", "type": "py.Address"}]}
    refs = [SchemaReference("py.Address", "py-address", 1)]
    cust_id = sr2.register_schema("py-customer-value", Schema(json.dumps(customer), "AVRO", refs))
    cust = SchemaRegistryClient({"url": url}).get_schema(cust_id)
    assert [(r.name, r.subject, r.version) for r in cust.references] == [("py.Address", "py-address", 1)]

    # JSON Schema.
    json_id = sr2.register_schema("py-json-value", Schema('{"type": "object"}', "JSON"))
    assert SchemaRegistryClient({"url": url}).get_schema(json_id).schema_type == "JSON"

    # Deletes: soft, then permanent.
    tmp_id = sr2.register_schema("py-tmp", Schema('"string"', "AVRO"))
    assert sr2.delete_version("py-tmp", 1) == 1
    expect_error(404, 40401, sr2.get_versions, "py-tmp")
    # (A fresh client: sr2's cache would answer the re-registration itself.)
    assert SchemaRegistryClient({"url": url}).register_schema("py-tmp", Schema('"string"', "AVRO")) == tmp_id
    assert sr2.get_versions("py-tmp") == [2]
    assert sr2.delete_subject("py-tmp", permanent=True) == [2]
    expect_error(404, 40401, sr2.get_latest_version, "py-tmp")
    expect_error(404, 40403, SchemaRegistryClient({"url": url}).get_schema, tmp_id)
    expect_error(404, 40403, SchemaRegistryClient({"url": url}).get_schema, 9999)

    assert sorted(sr2.get_subjects()) == ["py-address", "py-customer-value", "py-json-value", "py-users-value"], \
        sr2.get_subjects()
    print("OK: ids", schema_id, v2_id, cust_id, json_id)


if __name__ == "__main__":
    main(sys.argv[1])
