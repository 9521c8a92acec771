-- The W3C trace context (traceparent) of the request that queued the job,
-- when OTLP tracing is on: the delivery span joins the ingest span's trace.
ALTER TABLE delivery_jobs ADD COLUMN traceparent TEXT;
