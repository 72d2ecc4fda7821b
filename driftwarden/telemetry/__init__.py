"""OpenTelemetry for both processes: setup, metrics, semantic conventions, OTLP export."""
