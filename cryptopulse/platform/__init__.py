"""The local streaming platform: Kafka broker and Spark connector jars, provisioned and run without Docker."""
