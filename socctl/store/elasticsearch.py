"""Elasticsearch: client, ECS index template + ILM policy (``collect setup-es``), search.

Events go to data streams ``logs-socctl.<dataset>-<namespace>``. Credentials come from the
environment (an API key, or user and password) and the cluster's CA is verified; both are
named in collect.yaml, never stored in it.
"""

from __future__ import annotations

import os
from typing import Any

from socctl.collector.definition import ElasticsearchSettings
from socctl.errors import ConfigError, SocctlError

TEMPLATE = "socctl-logs"
ILM_POLICY = "socctl-logs"
PATTERN = "logs-socctl.*-*"

_KEYWORD = {"type": "keyword", "ignore_above": 1024}
MAPPINGS: dict[str, Any] = {
    "dynamic": True,
    "dynamic_templates": [{"strings_as_keyword": {
        "match_mapping_type": "string", "mapping": _KEYWORD}}],
    "properties": {
        "@timestamp": {"type": "date"},
        "message": {"type": "match_only_text"},
        "log": {"properties": {"original": {"type": "keyword", "index": False,
                                            "doc_values": False}, "level": _KEYWORD}},
        "event": {"properties": dict.fromkeys(
            ("id", "kind", "category", "type", "outcome", "action", "code", "dataset", "module",
             "reason"), _KEYWORD)},
        "source": {"properties": {"ip": {"type": "ip"}, "port": {"type": "long"},
                                  "domain": _KEYWORD}},
        "destination": {"properties": {"ip": {"type": "ip"}, "port": {"type": "long"},
                                       "domain": _KEYWORD}},
        "host": {"properties": {"name": _KEYWORD, "ip": {"type": "ip"}}},
        "observer": {"properties": {"name": _KEYWORD, "ip": {"type": "ip"},
                                    "type": _KEYWORD, "vendor": _KEYWORD}},
        "user": {"properties": {"name": _KEYWORD}},
        "url": {"properties": {"original": {"type": "wildcard"}, "path": {"type": "wildcard"},
                               "query": _KEYWORD}},
        "http": {"properties": {"request": {"properties": {"method": _KEYWORD}},
                                "response": {"properties": {"status_code": {"type": "long"}}}}},
        "user_agent": {"properties": {"original": {"type": "wildcard"}}},
        "threat": {"properties": {"indicator": {"properties": {
            "ip": {"type": "ip"}, "provider": _KEYWORD, "type": _KEYWORD}}}},
        "email": {"properties": {"subject": {"type": "keyword", "ignore_above": 2048},
                                 "from": {"properties": {"address": _KEYWORD}},
                                 "to": {"properties": {"address": _KEYWORD}}}},
        "socctl": {"properties": {"site": _KEYWORD, "tier": _KEYWORD, "province": _KEYWORD}},
        "data_stream": {"properties": {"type": {"type": "constant_keyword"},
                                       "dataset": {"type": "constant_keyword"},
                                       "namespace": {"type": "constant_keyword"}}},
    },
}


RETRY_STATUSES = (429, 502, 503, 504)
"""Answers that mean "later" (overload, a node restarting), retried with backoff."""


def client(conf: ElasticsearchSettings) -> Any:
    """An ``Elasticsearch`` client: verified TLS, auth from the environment, retries with
    backoff on 429/502/503/504 and timeouts."""
    from elasticsearch import Elasticsearch

    kwargs: dict[str, Any] = {
        "max_retries": conf.max_retries, "retry_on_timeout": True,
        "retry_on_status": RETRY_STATUSES, "request_timeout": 30,
        # full-jitter backoff between the transport's retries (without it they came
        # back to back: an overloaded cluster got all of them at once)
        "retry_backoff_base": 0.5, "retry_backoff_cap": 10.0,
    }
    if conf.url.startswith("https"):
        kwargs["verify_certs"] = conf.verify_certs
        if conf.ca_certs:
            kwargs["ca_certs"] = conf.ca_certs
    api_key = os.environ.get(conf.api_key_env)
    user = os.environ.get(conf.username_env)
    password = os.environ.get(conf.password_env)
    if api_key:
        kwargs["api_key"] = api_key
    elif user and password:
        kwargs["basic_auth"] = (user, password)
    return Elasticsearch(conf.url, **kwargs)


def ilm_policy(retention_days: float) -> dict[str, Any]:
    return {"phases": {
        "hot": {"actions": {"rollover": {"max_age": "1d", "max_primary_shard_size": "50gb"}}},
        "delete": {"min_age": f"{int(retention_days)}d", "actions": {"delete": {}}},
    }}


def index_template() -> dict[str, Any]:
    return {"index_patterns": [PATTERN], "data_stream": {}, "priority": 200,
            "template": {"settings": {"index.lifecycle.name": ILM_POLICY},
                         "mappings": MAPPINGS},
            "_meta": {"managed_by": "socctl"}}


def setup(conf: ElasticsearchSettings, retention_days: float) -> dict[str, Any]:
    """Install (or update) the ILM policy and the ECS index template; idempotent."""
    from elasticsearch import ApiError, TransportError

    es = client(conf)
    try:
        es.ilm.put_lifecycle(name=ILM_POLICY, policy=ilm_policy(retention_days))
        body = index_template()
        es.indices.put_index_template(
            name=TEMPLATE, index_patterns=body["index_patterns"], data_stream=body["data_stream"],
            priority=body["priority"], template=body["template"], meta=body["_meta"])
    except (ApiError, TransportError) as exc:
        raise SocctlError(f"Elasticsearch setup failed at {conf.url}: {exc}") from exc
    finally:
        es.close()
    return {"url": conf.url, "ilm_policy": ILM_POLICY, "index_template": TEMPLATE,
            "pattern": PATTERN, "retention_days": retention_days}


def search(conf: ElasticsearchSettings, query: str, *, since: float | None = None,
           limit: int = 50) -> list[dict[str, Any]]:
    from elasticsearch import ApiError, TransportError

    from socctl.store.query import compile_es

    filters: list[dict[str, Any]] = [compile_es(query)]
    if since is not None:
        filters.append({"range": {"@timestamp": {"gte": int(since * 1000),
                                                 "format": "epoch_millis"}}})
    es = client(conf)
    try:
        result = es.search(index="logs-socctl.*", query={"bool": {"filter": filters}},
                           size=limit, sort=[{"@timestamp": {"order": "desc"}}])
    except (ApiError, TransportError) as exc:
        raise SocctlError(f"Elasticsearch search failed at {conf.url}: {exc}") from exc
    finally:
        es.close()
    return [hit["_source"] for hit in result["hits"]["hits"]]


def require_url(conf: ElasticsearchSettings) -> None:
    if not conf.url.startswith(("http://", "https://")):
        raise ConfigError(f"elasticsearch.url must be http(s)://..., got {conf.url!r}")
