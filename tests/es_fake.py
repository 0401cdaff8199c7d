"""A local HTTP server answering like Elasticsearch 9 (NOT a real cluster).

No Elasticsearch server can be installed on the CI machines, so the sink is tested at
the HTTP level against this: the real elasticsearch-py client talks to it, and it answers
with the response shapes Elasticsearch documents for these APIs (product header, bulk
items with per-document status, 409 version conflicts on ``create``, 400
document_parsing_exception, 429 es_rejected_execution_exception on the whole request or
per item). When SOCCTL_TEST_ES_URL is set, tests/unit/test_es_sink.py also runs against
the real cluster.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeElasticsearch:
    def __init__(self, port: int = 0) -> None:
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}
        self.templates: dict[str, Any] = {}
        self.policies: dict[str, Any] = {}
        self.requests: list[tuple[str, str]] = []
        self.reject_whole_bulk = 0     # answer the next N _bulk requests with 429
        self.reject_items_once = 0     # answer the first N items of the next bulk with 429
        self.reject_items_status = 429  # ... or with this (503: a shard's primary is moving)
        self.lock = threading.Lock()
        self.connections: set[Any] = set()
        self.port = port
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def setup(self) -> None:
                super().setup()
                fake.connections.add(self.connection)

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.elasticsearch+json;"
                                 "compatible-with=9")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path))
                if self.path == "/":
                    self._send(200, {"name": "fake", "cluster_name": "socctl-test",
                                     "version": {"number": "9.1.0",
                                                 "build_flavor": "default"},
                                     "tagline": "You Know, for Search"})
                else:
                    self._send(404, {"error": {"type": "resource_not_found_exception",
                                               "reason": self.path}, "status": 404})

            def do_PUT(self) -> None:
                if self.path.startswith("/_bulk"):
                    self.do_POST()
                    return
                fake.requests.append(("PUT", self.path))
                body = json.loads(self._body() or b"{}")
                if self.path.startswith("/_ilm/policy/"):
                    fake.policies[self.path.rsplit("/", 1)[1]] = body
                elif self.path.startswith("/_index_template/"):
                    fake.templates[self.path.rsplit("/", 1)[1]] = body
                self._send(200, {"acknowledged": True})

            def do_POST(self) -> None:
                fake.requests.append(("BULK" if self.path.startswith("/_bulk") else "POST",
                                      self.path))
                if not self.path.startswith("/_bulk"):
                    self._send(404, {"status": 404})
                    return
                lines = [json.loads(x) for x in self._body().splitlines() if x.strip()]
                with fake.lock:
                    if fake.reject_whole_bulk > 0:
                        fake.reject_whole_bulk -= 1
                        self._send(429, {"error": {
                            "type": "es_rejected_execution_exception",
                            "reason": "rejected execution of coordinating operation"},
                            "status": 429})
                        return
                    items, errors = [], False
                    for k in range(0, len(lines), 2):
                        meta = lines[k]["create"]
                        doc = lines[k + 1]
                        key = (meta["_index"], meta["_id"])
                        item: dict[str, Any] = {"_index": meta["_index"], "_id": meta["_id"]}
                        if fake.reject_items_once > 0:
                            fake.reject_items_once -= 1
                            item.update(status=fake.reject_items_status, error={
                                "type": "es_rejected_execution_exception",
                                "reason": "rejected execution of primary operation"}
                                if fake.reject_items_status == 429 else {
                                "type": "unavailable_shards_exception",
                                "reason": "[logs-socctl][0] primary shard is not active"})
                        elif key in fake.docs:
                            item.update(status=409, error={
                                "type": "version_conflict_engine_exception",
                                "reason": f"[{meta['_id']}]: version conflict, document "
                                          "already exists (current version [1])"})
                        elif (doc.get("source") or {}).get("ip") == "not-an-ip":
                            item.update(status=400, error={
                                "type": "document_parsing_exception",
                                "reason": "[1:40] failed to parse field [source.ip] of type "
                                          f"[ip] in document with id '{meta['_id']}'. "
                                          "Preview of field's value: 'not-an-ip'"})
                        else:
                            fake.docs[key] = doc
                            item.update(status=201, result="created", _version=1,
                                        _seq_no=len(fake.docs), _primary_term=1,
                                        _shards={"total": 1, "successful": 1, "failed": 0})
                        errors |= item["status"] >= 300
                        items.append({"create": item})
                self._send(200, {"errors": errors, "took": 3, "items": items})

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Down like a dead node: the listener and every kept-alive connection close."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            for conn in list(self.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                    conn.close()
                except OSError:
                    pass
            self.connections.clear()
            self.server = None
