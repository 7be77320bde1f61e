"""schemathesis hooks for the reference DataStorage run (test/peers/schemathesis.test.ts).

DataStorage rejects spec-valid events by rules the schema does not express (DESIGN §5): the
timestamp window (-7 days / +60 min), event_data.event_type equal to event_type, column sizes
of the database, actor_ip an IP address, parent_event_id naming a stored event. Left as
generated, nearly every write is answered 400 and the 201 path (storage, hash chain, response
schemas) is never exercised.

`map_body` moves generated events inside those rules, and only where the generated value is
already valid for the spec: a value that violates the schema (what a negative test case is
about) is never touched, so a negative case stays negative and a positive case stays positive.
Everything else (event_data, ids, texts, numbers) stays as generated.
"""

from datetime import datetime, timedelta, timezone

import schemathesis

WRITE_OPERATIONS = {"createAuditEvent", "createAuditEventsBatch"}


def _is_str(value, min_len=0, max_len=None):
    return isinstance(value, str) and len(value) >= min_len and (max_len is None or len(value) <= max_len)


def _is_datetime(value):
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        return True
    except ValueError:
        return False


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _within_rules(event, now):
    if not isinstance(event, dict):
        return event
    event = dict(event)
    if _is_datetime(event.get("event_timestamp")):
        event["event_timestamp"] = now
    data = event.get("event_data")
    if _is_str(event.get("event_type"), 1, 100) and isinstance(data, dict) and _is_str(data.get("event_type"), 1, 100):
        event["event_type"] = data["event_type"]
    if _is_str(event.get("version"), 1, 20):
        event["version"] = "1.0"
    if _is_str(event.get("actor_ip"), 0, 45):
        event["actor_ip"] = "10.12.4.7"
    # No length limits in the spec; the database's columns have them.
    for key, short in (
        ("actor_type", "service"),
        ("resource_type", "Pod"),
        ("namespace", "payments"),
        ("severity", "critical"),
        ("error_code", "E42"),
    ):
        if _is_str(event.get(key)):
            event[key] = short
    if _is_int(event.get("retention_days")):
        event["retention_days"] = min(max(event["retention_days"], 1), 2555)
    # A parent must be a stored event; none is known here (nullable in the spec).
    if _is_str(event.get("parent_event_id")):
        event["parent_event_id"] = None
    if _is_datetime(event.get("parent_event_date")):
        event["parent_event_date"] = None
    return event


@schemathesis.hook
def map_body(context, body):
    if context.operation is None or context.operation.definition.raw.get("operationId") not in WRITE_OPERATIONS:
        return body
    now = (datetime.now(timezone.utc) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(body, list):
        return [_within_rules(event, now) for event in body]
    return _within_rules(body, now)
