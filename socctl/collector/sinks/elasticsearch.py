"""The Elasticsearch sink: ``helpers.streaming_bulk`` into data streams.

Documents are ``create`` operations with the deterministic event id as ``_id``, so a
re-sent event answers 409 (counted as a duplicate, not an error). Per-document 429s are
retried by streaming_bulk with exponential backoff; a 429/5xx on the whole request is
retried by the transport, and when that is exhausted (or the cluster is unreachable) the
batch stays in the spool (SinkUnavailable). Other per-document failures (mapping errors)
are returned as rejected: the shipper puts them in the dead-letter store with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from socctl.collector.definition import CollectFile, ElasticsearchSettings
from socctl.collector.sinks.base import Health, Sink, SinkResult, SinkUnavailable
from socctl.store.sqlite import Row


def stream_name(doc: dict[str, Any]) -> str:
    ds = doc.get("data_stream") or {}
    dataset = ds.get("dataset") or f"socctl.{doc['event']['dataset']}"
    return f"logs-{dataset}-{ds.get('namespace', 'default')}"


class ElasticsearchSink(Sink):
    name = "elasticsearch"

    def __init__(self, conf: ElasticsearchSettings) -> None:
        self.conf = conf
        self.es: Any = None

    @classmethod
    def from_settings(cls, settings: CollectFile) -> ElasticsearchSink:
        return cls(settings.elasticsearch)

    def build(self) -> None:
        from socctl.store.elasticsearch import client, require_url

        require_url(self.conf)
        self.es = client(self.conf)

    def healthcheck(self) -> Health:
        try:
            info = self.es.info()
        except Exception as exc:
            return Health(False, str(exc))
        return Health(True, f"{self.conf.url} {info['version']['number']}")

    def _actions(self, rows: Sequence[Row]) -> Iterator[dict[str, Any]]:
        for row in rows:
            doc = json.loads(row[-1])
            yield {"_op_type": "create", "_index": stream_name(doc), "_id": row[0],
                   "_source": doc}

    def write(self, rows: Sequence[Row]) -> SinkResult:
        from elasticsearch import ApiError, TransportError, helpers

        from socctl.store.elasticsearch import RETRY_STATUSES

        if self.es is None:
            self.build()
        by_id = {row[0]: row for row in rows}
        result = SinkResult()
        try:
            for ok, item in helpers.streaming_bulk(
                    self.es, self._actions(rows), chunk_size=self.conf.chunk_size,
                    max_retries=self.conf.max_retries, initial_backoff=0.5, max_backoff=10,
                    retry_on_status=RETRY_STATUSES,  # a document's 503 too, not only 429
                    raise_on_error=False, raise_on_exception=True, yield_ok=True):
                op = item.get("create") or next(iter(item.values()))
                if ok:
                    result.stored += 1
                elif op.get("status") == 409:
                    result.duplicates += 1
                elif op.get("status") == 429 or op.get("status", 0) >= 500:
                    raise SinkUnavailable(f"Elasticsearch kept answering {op.get('status')} "
                                          f"after {self.conf.max_retries} retries")
                else:
                    err = op.get("error") or {}
                    reason = f"{op.get('status')} {err.get('type', '')}: {err.get('reason', '')}"
                    result.rejected.append((by_id[op.get("_id")], reason.strip()))
        except (ApiError, TransportError) as exc:
            raise SinkUnavailable(f"Elasticsearch at {self.conf.url}: {exc}") from exc
        return result

    def close(self) -> None:
        if self.es is not None:
            self.es.close()
            self.es = None
