"""driftwarden's measured OTLP span export path: wire encoder, batch processor, exporters."""
