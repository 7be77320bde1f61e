// Command go-emitter is a small Go application that writes audit events through the
// OpenTelemetry Go SDK: the Logs API (go.opentelemetry.io/otel/log), the SDK's
// LoggerProvider with a batch processor, and the OTLP/HTTP protobuf log exporter
// (otlploghttp), configured by the standard OTEL_EXPORTER_OTLP_* environment variables.
//
// The events to emit are read as JSON from stdin:
//
//	{"resource": {"service.name": "payments-gateway", ...},
//	 "scope": {"name": "payments-gateway", "version": "1.0.0"},
//	 "events": [{"event_type": "gateway.signal.received", "category": "gateway",
//	             "action": "received", "outcome": "success", "correlation_id": "rr-1",
//	             "time_unix_nano": "1767225600123456789", "severity_text": "INFO",
//	             "data": {...}, "attributes": {...}}]}
//
// Each event becomes one log record: event name = event type, body = the event data (a
// map), and the Kubernaut audit semantic-convention attributes. It prints one JSON line
// {"emitted": N} and exits 0 once the exporter delivered every record, else exits 1.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
)

// Kubernaut audit semantic conventions (packages/semantic-conventions).
const (
	attrAuditEventCategory = "audit.event.category"
	attrAuditEventAction   = "audit.event.action"
	attrAuditEventOutcome  = "audit.event.outcome"
	attrAuditCorrelationID = "audit.correlation.id"
)

type event struct {
	EventType     string         `json:"event_type"`
	Category      string         `json:"category"`
	Action        string         `json:"action"`
	Outcome       string         `json:"outcome"`
	CorrelationID string         `json:"correlation_id"`
	TimeUnixNano  string         `json:"time_unix_nano"`
	SeverityText  string         `json:"severity_text"`
	Data          map[string]any `json:"data"`
	Attributes    map[string]any `json:"attributes"`
}

type input struct {
	Resource map[string]string `json:"resource"`
	Scope    struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"scope"`
	Events []event `json:"events"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "go-emitter: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	raw, err := readAll()
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var in input
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("reading the events from stdin: %w", err)
	}

	// Export errors reach the global error handler; any of them fails the run.
	var exportErrors []string
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		exportErrors = append(exportErrors, err.Error())
	}))

	ctx := context.Background()
	exporter, err := otlploghttp.New(ctx) // endpoint, headers, compression from OTEL_EXPORTER_OTLP_*
	if err != nil {
		return fmt.Errorf("creating the OTLP/HTTP log exporter: %w", err)
	}
	attrs := make([]attribute.KeyValue, 0, len(in.Resource))
	for _, k := range sortedKeys(in.Resource) {
		attrs = append(attrs, attribute.String(k, in.Resource[k]))
	}
	provider := sdklog.NewLoggerProvider(
		sdklog.WithResource(resource.NewSchemaless(attrs...)),
		sdklog.WithProcessor(sdklog.NewBatchProcessor(exporter)),
	)
	logger := provider.Logger(in.Scope.Name, log.WithInstrumentationVersion(in.Scope.Version))

	for _, e := range in.Events {
		ns, err := strconv.ParseInt(e.TimeUnixNano, 10, 64)
		if err != nil {
			return fmt.Errorf("event %q: time_unix_nano: %w", e.CorrelationID, err)
		}
		var r log.Record
		r.SetEventName(e.EventType)
		r.SetTimestamp(time.Unix(0, ns))
		r.SetObservedTimestamp(time.Now())
		r.SetSeverity(log.SeverityInfo)
		r.SetSeverityText(e.SeverityText)
		r.SetBody(toValue(e.Data))
		r.AddAttributes(
			attribute.String(attrAuditEventCategory, e.Category),
			attribute.String(attrAuditEventAction, e.Action),
			attribute.String(attrAuditEventOutcome, e.Outcome),
			attribute.String(attrAuditCorrelationID, e.CorrelationID),
		)
		for _, k := range sortedKeys(e.Attributes) {
			r.AddAttributes(attribute.KeyValue{Key: attribute.Key(k), Value: toValue(e.Attributes[k])})
		}
		logger.Emit(ctx, r)
	}

	flushErr := provider.ForceFlush(ctx)
	shutdownErr := provider.Shutdown(ctx)
	if flushErr != nil {
		exportErrors = append(exportErrors, flushErr.Error())
	}
	if shutdownErr != nil {
		exportErrors = append(exportErrors, shutdownErr.Error())
	}
	if len(exportErrors) > 0 {
		return fmt.Errorf("export failed: %s", strings.Join(exportErrors, "; "))
	}
	fmt.Printf("{\"emitted\":%d}\n", len(in.Events))
	return nil
}

func readAll() ([]byte, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(os.Stdin); err != nil {
		return nil, fmt.Errorf("reading stdin: %w", err)
	}
	return buf.Bytes(), nil
}

// toValue converts decoded JSON into an OTel log value: objects to maps (keys sorted),
// arrays to slices, integers to int64, other numbers to float64.
func toValue(v any) attribute.Value {
	switch t := v.(type) {
	case nil:
		return attribute.Value{}
	case string:
		return attribute.StringValue(t)
	case bool:
		return attribute.BoolValue(t)
	case json.Number:
		if i, err := strconv.ParseInt(t.String(), 10, 64); err == nil {
			return attribute.Int64Value(i)
		}
		f, _ := t.Float64()
		return attribute.Float64Value(f)
	case []any:
		vs := make([]attribute.Value, len(t))
		for i, item := range t {
			vs[i] = toValue(item)
		}
		return attribute.SliceValue(vs...)
	case map[string]any:
		kvs := make([]attribute.KeyValue, 0, len(t))
		for _, k := range sortedKeys(t) {
			kvs = append(kvs, attribute.KeyValue{Key: attribute.Key(k), Value: toValue(t[k])})
		}
		return attribute.MapValue(kvs...)
	default:
		return attribute.StringValue(fmt.Sprint(t))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
