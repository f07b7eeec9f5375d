"""The API server: POST /ingest, WebSocket fan-out, read API, metrics and the dashboard."""
