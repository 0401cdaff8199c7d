"""Where events live: the embedded SQLite store (default) or Elasticsearch."""
