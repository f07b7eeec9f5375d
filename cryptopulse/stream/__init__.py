"""The Spark Structured Streaming job: ticks in, 30 s window aggregates out.

parse.py and window.py hold pure DataFrame -> DataFrame transforms (each batch's partial
aggregates); merge.py and finals.py fold them into the open windows in the driver (pure
Python); sinks.py publishes batches; job.py wires the session, source and query.
"""
