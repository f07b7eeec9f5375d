"""The API's routes, one module per resource: ingest, market (reads), live (the WebSocket),
ops (health and metrics), dashboard (the built web app)."""
