"""A small Python application that writes audit events through the OpenTelemetry Python SDK.

The Logs API of the SDK (LoggerProvider, a batch processor) and the OTLP/HTTP protobuf log
exporter (opentelemetry-exporter-otlp-proto-http), configured by the standard
OTEL_EXPORTER_OTLP_* environment variables. The events to emit are read as JSON from stdin:

    {"resource": {"service.name": "payments-gateway", ...},
     "scope": {"name": "payments-gateway", "version": "1.0.0"},
     "events": [{"event_type": "gateway.signal.received", "category": "gateway",
                 "action": "received", "outcome": "success", "correlation_id": "rr-1",
                 "time_unix_nano": "1767225600123456789", "severity_text": "INFO",
                 "data": {...}, "attributes": {...}}]}

Each event becomes one log record: event name = event type, body = the event data (a map),
and the Kubernaut audit semantic-convention attributes. Prints {"emitted": N} and exits 0
once the exporter delivered every record, else exits 1.
"""

import json
import sys

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

# Kubernaut audit semantic conventions (packages/semantic-conventions).
ATTR_AUDIT_EVENT_CATEGORY = "audit.event.category"
ATTR_AUDIT_EVENT_ACTION = "audit.event.action"
ATTR_AUDIT_EVENT_OUTCOME = "audit.event.outcome"
ATTR_AUDIT_CORRELATION_ID = "audit.correlation.id"


class RecordingExporter:
    """Delegates to the OTLP exporter and keeps every export result."""

    def __init__(self, inner):
        self._inner = inner
        self.results = []

    def export(self, batch):
        result = self._inner.export(batch)
        self.results.append(result)
        return result

    def force_flush(self, timeout_millis=30000):
        return self._inner.force_flush(timeout_millis)

    def shutdown(self):
        self._inner.shutdown()


def main() -> int:
    spec = json.load(sys.stdin)
    exporter = RecordingExporter(OTLPLogExporter())  # endpoint etc. from OTEL_EXPORTER_OTLP_*
    provider = LoggerProvider(resource=Resource.create(spec["resource"]))
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    scope = spec["scope"]
    logger = provider.get_logger(scope["name"], scope["version"])

    for event in spec["events"]:
        attributes = {
            ATTR_AUDIT_EVENT_CATEGORY: event["category"],
            ATTR_AUDIT_EVENT_ACTION: event["action"],
            ATTR_AUDIT_EVENT_OUTCOME: event["outcome"],
            ATTR_AUDIT_CORRELATION_ID: event["correlation_id"],
        }
        attributes.update(event.get("attributes") or {})
        logger.emit(
            timestamp=int(event["time_unix_nano"]),
            severity_number=SeverityNumber.INFO,
            severity_text=event.get("severity_text"),
            event_name=event["event_type"],
            body=event["data"],
            attributes=attributes,
        )

    flushed = provider.force_flush()
    provider.shutdown()
    failed = [r for r in exporter.results if r != LogRecordExportResult.SUCCESS]
    if not flushed or failed or not exporter.results:
        print(
            f"python-emitter: export failed (flushed={flushed}, results={exporter.results})",
            file=sys.stderr,
        )
        return 1
    print(json.dumps({"emitted": len(spec["events"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
