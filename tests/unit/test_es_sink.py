"""The Elasticsearch sink and `collect setup-es`.

In CI these run at the HTTP level against tests/es_fake.py, a local server that answers
with real Elasticsearch response shapes (it is NOT Elasticsearch; none can be installed
here). With SOCCTL_TEST_ES_URL set (see README), test_real_cluster runs against a real one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from socctl.collector.definition import ElasticsearchSettings
from socctl.collector.parse import parse_line
from socctl.collector.sinks.base import SinkUnavailable
from socctl.collector.sinks.elasticsearch import ElasticsearchSink
from socctl.store.sqlite import to_row
from tests.collect_harness import Harness, free_port
from tests.es_fake import FakeElasticsearch


def rows(n: int, start: int = 0, ip: str = "203.0.113.5") -> list[tuple[object, ...]]:
    out = []
    for i in range(start, start + n):
        ev = parse_line("sshd", f"Failed password for root from 203.0.113.5 port {i} ssh2",
                        received=1795340000.0)
        ev["source"]["ip"] = ip  # a bad value reaches ES as the cluster would see it
        ev["data_stream"] = {"type": "logs", "dataset": "socctl.sshd", "namespace": "test"}
        out.append(to_row(f"id-{i}", 1795340000.0, 1795340000.0, ev))
    return out


@pytest.fixture
def fake() -> Iterator[FakeElasticsearch]:
    server = FakeElasticsearch()
    server.start()
    yield server
    server.stop()


def sink_for(url: str, retries: int = 3) -> ElasticsearchSink:
    return ElasticsearchSink(ElasticsearchSettings(url=url, max_retries=retries,
                                                   chunk_size=100))


def test_bulk_create_into_data_streams_and_duplicates_are_409(fake: FakeElasticsearch) -> None:
    sink = sink_for(fake.url)
    result = sink.write(rows(250))
    assert (result.stored, result.duplicates, result.rejected) == (250, 0, [])
    assert {idx for idx, _ in fake.docs} == {"logs-socctl.sshd-test"}
    again = sink.write(rows(260))  # a re-send after a crash: the same ids
    assert (again.stored, again.duplicates) == (10, 250)
    assert len(fake.docs) == 260
    doc = fake.docs[("logs-socctl.sshd-test", "id-3")]
    assert doc["source"]["ip"] == "203.0.113.5" and doc["event"]["action"] == "ssh_login"
    assert sink.healthcheck().ok


def test_mapping_errors_are_rejected_per_document(fake: FakeElasticsearch) -> None:
    result = sink_for(fake.url).write(rows(5) + rows(2, 5, ip="not-an-ip"))
    assert result.stored == 5
    assert [(r[0], reason.split(":")[0]) for r, reason in result.rejected] == [
        ("id-5", "400 document_parsing_exception"), ("id-6", "400 document_parsing_exception")]


def test_429_whole_request_and_per_item_are_retried(fake: FakeElasticsearch) -> None:
    fake.reject_whole_bulk = 2
    fake.reject_items_once = 7
    started = time.monotonic()
    result = sink_for(fake.url, retries=4).write(rows(50))
    assert result.stored == 50 and len(fake.docs) == 50
    bulks = [p for m, p in fake.requests if m == "BULK"]
    assert len(bulks) == 4  # 2 rejected requests, then 1 with 7 item 429s, then the retry
    assert time.monotonic() - started > 0.4  # backed off (0.5 s) before the item retry


def test_a_documents_503_is_retried_like_its_429(fake: FakeElasticsearch) -> None:
    """A per-document 503 (a shard's primary relocating) was not retried by the bulk
    helper, which retries 429 only: the whole batch went back to the spool, again and
    again while the shard moved."""
    fake.reject_items_once = 5
    fake.reject_items_status = 503
    result = sink_for(fake.url, retries=2).write(rows(20))
    assert result.stored == 20 and len(fake.docs) == 20 and not result.rejected
    assert len([p for m, p in fake.requests if m == "BULK"]) == 2


def test_unreachable_or_still_overloaded_cluster_leaves_the_batch_spooled(
        fake: FakeElasticsearch) -> None:
    fake.reject_whole_bulk = 100
    with pytest.raises(SinkUnavailable):
        sink_for(fake.url, retries=1).write(rows(3))
    port = free_port()
    with pytest.raises(SinkUnavailable):
        sink_for(f"http://127.0.0.1:{port}", retries=0).write(rows(3))


def test_setup_es_installs_template_and_ilm(tmp_path: Path, fake: FakeElasticsearch) -> None:
    h = Harness(tmp_path, [{"name": "tail", "source": {"type": "file",
                                                        "paths": [str(tmp_path / "x.log")]},
                            "parser": {"dataset": "sshd"}}],
                collect={"sink": "elasticsearch", "elasticsearch": {"url": fake.url},
                         "store": {"retention_days": 30}})
    out = h.socctl("-o", "json", "collect", "setup-es")
    assert out.returncode == 0, out.stderr
    template = fake.templates["socctl-logs"]
    assert template["index_patterns"] == ["logs-socctl.*-*"] and "data_stream" in template
    assert template["template"]["settings"]["index.lifecycle.name"] == "socctl-logs"
    props = template["template"]["mappings"]["properties"]
    assert props["source"]["properties"]["ip"] == {"type": "ip"}
    assert fake.policies["socctl-logs"]["policy"]["phases"]["delete"]["min_age"] == "30d"


def test_search_of_an_unreachable_cluster_is_one_error_not_a_traceback_per_retry(
        tmp_path: Path) -> None:
    """The client logs each retry with the exception's traceback: six of them filled the
    screen before socctl's one-line error. The retries stay visible (one line each); the
    tracebacks only with -vv. Nothing listens on the port (no server needed)."""
    url = f"http://127.0.0.1:{free_port()}"
    h = Harness(tmp_path, [{"name": "tail", "source": {"type": "file",
                                                        "paths": [str(tmp_path / "x.log")]},
                            "parser": {"dataset": "sshd"}}],
                collect={"sink": "elasticsearch",
                         "elasticsearch": {"url": url, "max_retries": 2}})
    out = h.socctl("events", "search", "user.name:root")
    assert out.returncode == 1
    assert f"error: Elasticsearch search failed at {url}" in out.stderr, out.stderr
    assert "Retrying request after failure" in out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    verbose = h.socctl("-vv", "events", "search", "user.name:root")
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr


def test_collector_into_es_survives_an_outage_and_reconciles(tmp_path: Path) -> None:
    es = FakeElasticsearch(port=free_port())
    es.start()
    log = tmp_path / "app.log"
    log.touch()
    h = Harness(tmp_path, [{"name": "tail", "source": {"type": "file", "paths": [str(log)]},
                            "parser": {"dataset": "sshd"}}],
                collect={"sink": "elasticsearch",
                         "elasticsearch": {"url": es.url, "max_retries": 1}})
    try:
        h.start()

        def write(start: int, n: int) -> None:
            with log.open("ab") as fh:
                fh.write(b"".join(b"Invalid user e%d from 203.0.113.9 port 1\n" % i
                                  for i in range(start, start + n)))

        write(0, 500)
        deadline = time.monotonic() + 20
        while len(es.docs) < 500 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(es.docs) == 500
        port = es.port
        es.stop()                      # the cluster goes away mid-stream
        write(500, 700)
        time.sleep(3)
        mid = h.stats()
        assert mid["sink"]["healthy"] is False and mid["spool"]["pending_bytes"] > 0
        docs = es.docs
        es = FakeElasticsearch(port=port)
        es.docs = docs                 # ... and comes back with its data
        es.start()
        deadline = time.monotonic() + 30
        while len(es.docs) < 1200 and time.monotonic() < deadline:
            time.sleep(0.2)
        h.stop()
        assert len(es.docs) == 1200
        assert {d["user"]["name"] for d in es.docs.values()} == {f"e{i}" for i in range(1200)}
        tail = h.stats()["sources"]["tail"]
        assert tail["received"] == tail["parsed"] == 1200
        assert tail["shipped"] + tail["duplicates"] == 1200
    finally:
        h.close()
        es.stop()


@pytest.mark.skipif(not os.environ.get("SOCCTL_TEST_ES_URL"),
                    reason="set SOCCTL_TEST_ES_URL (and SOCCTL_ES_API_KEY or user/password, "
                           "SOCCTL_TEST_ES_CA) to test against a real Elasticsearch")
def test_real_cluster(tmp_path: Path) -> None:
    url = os.environ["SOCCTL_TEST_ES_URL"]
    settings = {"url": url}
    if os.environ.get("SOCCTL_TEST_ES_CA"):
        settings["ca_certs"] = os.environ["SOCCTL_TEST_ES_CA"]
    h = Harness(tmp_path, [{"name": "auth", "source": {"type": "file",
                                                        "paths": [str(tmp_path / "a.log")]},
                            "parser": {"dataset": "syslog"}}],
                collect={"sink": "elasticsearch", "elasticsearch": settings})
    assert h.socctl("collect", "setup-es").returncode == 0
    fixture = Path(__file__).resolve().parent.parent / "fixtures/collector/valid/auth.log"
    out = json.loads(h.socctl("-o", "json", "collect", "replay", "--source", "auth",
                              str(fixture)).stdout)
    assert out["read"] == 11 and out["stored"] + out["duplicates"] == 11
    time.sleep(2)  # refresh interval
    found = json.loads(h.socctl("-o", "json", "events", "search",
                                "event.action:ssh_login AND event.outcome:success").stdout)
    assert any(e["user"]["name"] == "root" for e in found)
