"""Entry point for spark-submit: `spark-submit ... cryptopulse/stream/__main__.py`."""

from cryptopulse.config import load_settings
from cryptopulse.log import setup_logging
from cryptopulse.stream.job import run

if __name__ == "__main__":
    settings = load_settings()
    setup_logging(settings.log_level, rich=False)
    run(settings)
