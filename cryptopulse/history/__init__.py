"""The history database: every final window, stored as it arrives and read back as candles.

`store.py` is the interface callers use; `sqlite.py` the embedded implementation; `rollup.py`
the pure roll-up of windows into candles; `writer.py` the thread that feeds the database from
the event loop without ever blocking it.
"""
