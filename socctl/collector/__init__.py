"""Log collection: sources (syslog, files, SNMP traps) -> parse -> ECS event -> spool -> sink.

Parsing of a single line is :func:`socctl.collector.parse.parse_line`; the embedded event
store is :class:`socctl.store.sqlite.SqliteStore`.
"""
