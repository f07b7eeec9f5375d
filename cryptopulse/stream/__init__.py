"""The Spark Structured Streaming job: ticks in, 30 s window aggregates out.

parse.py, window.py and enrich.py hold pure DataFrame -> DataFrame transforms;
sinks.py publishes batches; job.py wires the session, sources and queries.
"""
