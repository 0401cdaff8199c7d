"""Search over whichever store is configured (SQLite by default, Elasticsearch if set)."""

from __future__ import annotations

from typing import Any

from socctl.config import Settings


def search_events(settings: Settings, query: str, *, since: float | None = None,
                  limit: int = 50, store: str | None = None) -> list[dict[str, Any]]:
    from socctl.collector.definition import load_collection
    from socctl.collector.pipeline import collectors_folder, store_path

    collection = load_collection(collectors_folder(settings))
    kind = store or collection.settings.sink
    if kind == "elasticsearch":
        from socctl.errors import ConfigError

        raise ConfigError("searching Elasticsearch is not built yet", hint="use --store sqlite")
    from socctl.store.sqlite import SqliteStore

    with SqliteStore(store_path(settings, collection), readonly=True) as db:
        return db.search(query, since=since, limit=limit)
