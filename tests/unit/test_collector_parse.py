"""Parsers: real-format lines of every dataset become the ECS events detections rely on."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from socctl.collector.ecs import OccurrenceIds, ParseError, get
from socctl.collector.parse import DATASETS, parse_line
from socctl.collector.parsers.postgresql import compile_prefix
from tests.conftest import FIXTURES

VALID = FIXTURES / "collector" / "valid"
RECEIVED = 1795340000.0  # 2026-11-22T09:33:20Z


def lines(name: str) -> list[str]:
    return [line for line in (VALID / name).read_text(encoding="utf-8").splitlines() if line]


def parsed(dataset: str, name: str) -> list[dict[str, Any]]:
    return [parse_line(dataset, line, received=RECEIVED) for line in lines(name)]


def fields(ev: dict[str, Any], *names: str) -> tuple[Any, ...]:
    return tuple(get(ev, n) for n in names)


def test_contract_dataset_names() -> None:
    assert set(DATASETS) == {"sshd", "nginx.access", "nginx.error", "apache.access", "netfilter",
                             "postgresql", "frr", "cisco_ios", "snmp.trap", "postfix",
                             "clamav", "amavis", "syslog"}


def test_sshd_E_file_real_capture() -> None:
    """Lines written by a real OpenSSH 9.2 ``sshd -E`` (no header, CRLF endings)."""
    evs = parsed("sshd", "sshd-E.log")
    logins = [e for e in evs if get(e, "event.action") in ("ssh_login", "invalid_user")]
    assert [fields(e, "event.action", "event.outcome", "user.name", "source.ip")
            for e in logins] == [
        ("invalid_user", "failure", "nosuchuser", "127.0.0.1"),
        ("ssh_login", "failure", "nosuchuser", "127.0.0.1"),
        ("ssh_login", "failure", "root", "127.0.0.1"),
    ]
    assert all(e["@timestamp"] == "2026-11-22T09:33:20.000Z" for e in evs)  # no stamp: received
    assert all(not e["log"]["original"].endswith("\r") for e in evs)
    assert get(logins[1], "ssh.invalid_user") is True and get(logins[1], "ssh.method") == "password"


def test_auth_log_via_syslog_routing() -> None:
    evs = parsed("syslog", "auth.log")
    assert {get(e, "event.dataset") for e in evs} == {"sshd", "syslog"}
    by_action = [(get(e, "event.action"), get(e, "event.outcome"), get(e, "user.name"),
                  get(e, "source.ip"), get(e, "source.port")) for e in evs]
    assert ("ssh_login", "success", "root", "198.18.0.1", 4242) in by_action
    assert ("ssh_login", "failure", "root", "198.51.100.66", 40022) in by_action
    assert ("ssh_auth_limit", "failure", "root", "198.51.100.66", 40022) in by_action
    assert ("invalid_user", "failure", "admin", "203.0.113.5", 52514) in by_action
    accepted = next(e for e in evs if get(e, "event.action") == "ssh_login"
                    and get(e, "event.outcome") == "success")
    assert accepted["event"]["category"] == ["authentication"]
    assert accepted["event"]["type"] == ["start"]
    assert fields(accepted, "host.name", "process.name", "process.pid") == (
        "dc-primary-log1", "sshd", 910)
    assert accepted["@timestamp"] == "2026-11-22T07:42:00.000Z"
    sudo = evs[-1]
    assert get(sudo, "event.dataset") == "syslog" and get(sudo, "process.name") == "sudo"


def test_nginx_real_capture() -> None:
    evs = parsed("nginx.access", "nginx-access.log")
    first, second, third = evs
    assert fields(first, "http.request.method", "url.path", "url.query",
                  "http.response.status_code", "source.ip", "event.outcome") == (
        "GET", "/portal/login.php", "id=1%27%20OR%201=1--", 200, "127.0.0.1", "success")
    assert get(second, "user_agent.original").startswith("sqlmap/1.7.2")
    assert get(second, "http.request.referrer") == 'http://evil/"x'  # nginx \x22 unescaped
    assert get(second, "event.outcome") == "failure"
    assert get(third, "user.name") == "bob" and get(third, "http.request.method") == "POST"
    assert first["event"]["category"] == ["web"] and first["event"]["type"] == ["access"]


def test_nginx_error_real_capture() -> None:
    """Lines a real nginx 1.22 wrote to error.log: a login throttled by limit_req, a
    denied area, a directory listing, a missing file, an oversized body, a dead upstream."""
    first, _, limited, denied, listing, missing, big, upstream = parsed(
        "nginx.error", "nginx-error.log")
    assert fields(limited, "event.action", "source.ip", "http.request.method", "url.path",
                  "destination.domain", "http.request.referrer", "log.level",
                  "event.outcome") == (
        "request-rate-limited", "127.0.0.1", "POST", "/dang-nhap", "127.0.0.1",
        "http://evil.example/", "error", "failure")
    assert limited["event"]["type"] == ["error", "denied"]
    assert limited["nginx"]["error"] == {"connection_id": 3, "zone": "login", "excess": 1.994,
                                         "server": "portal.lab"}
    assert limited["message"] == 'limiting requests, excess: 1.994 by zone "login"'
    assert limited["@timestamp"] == "2026-12-08T01:00:05.000Z"  # no zone written: UTC
    assert fields(first, "event.action", "url.path") == ("file-not-found", "/dang-nhap")
    assert get(denied, "event.action") == "access-forbidden"
    assert get(listing, "event.action") == "access-forbidden"
    assert fields(missing, "url.path", "url.query") == ("/nope.php", "id=1")
    assert get(big, "event.action") == "request-body-too-large"
    assert get(upstream, "event.action") == "upstream-unreachable"
    assert upstream["nginx"]["error"]["upstream"] == "http://127.0.0.1:1/app/y"
    assert upstream["event"]["type"] == ["error"]


def test_nginx_error_over_syslog_shares_the_access_log_tag() -> None:
    """The web role sends both of nginx's logs under the tag ``nginx``: an error line is
    an nginx.error event, not a generic one with a parse error, and an access line stays
    an access event. nginx writes its own wall-clock time, read in the zone configured."""
    line = ('<187>Dec  8 08:00:05 web1 nginx: 2026/12/08 08:00:05 [error] 7#7: *3 limiting '
            'requests, excess: 20.5 by zone "portal", client: 2001:DB8::7, server: , '
            'request: "GET / HTTP/2.0", host: "portal"')
    ev = parse_line("syslog", line, received=RECEIVED, options=HANOI)
    assert fields(ev, "event.dataset", "event.module", "event.action", "source.ip",
                  "process.pid", "@timestamp") == (
        "nginx.error", "nginx", "request-rate-limited", "2001:db8::7", 7,
        "2026-12-08T01:00:05.000Z")
    assert "error" not in ev and "server" not in ev["nginx"]["error"]
    access = parse_line("syslog", '<190>Dec  8 08:00:05 web1 nginx: 198.18.2.1 - - '
                        '[08/Dec/2026:08:00:05 +0700] "GET / HTTP/1.1" 429 0 "-" "x"',
                        received=RECEIVED)
    assert get(access, "event.dataset") == "nginx.access"


@pytest.mark.parametrize(("line", "reason"), [
    ("2026/13/08 01:00:05 [error] 1#1: x", "bad nginx error-log time"),
    ("2026/12/08 01:00:05 [loud] 1#1: x", "unknown nginx error-log level [loud]"),
    ('127.0.0.1 - - [22/Nov/2026:07:57:08 +0000] "GET / HTTP/1.1" 200 3', "not an nginx"),
])
def test_nginx_error_rejects_what_it_cannot_read(line: str, reason: str) -> None:
    with pytest.raises(ParseError, match=re.escape(reason)):
        parse_line("nginx.error", line, received=RECEIVED)


def test_apache_vhost_combined_and_junk_request() -> None:
    vhost, login, junk = parsed("apache.access", "apache-access.log")
    assert get(vhost, "destination.domain") == "portal.vss.gov.vn"
    assert vhost["@timestamp"] == "2026-11-22T07:43:17.000Z"  # +0700 converted to UTC
    assert get(vhost, "url.query") == "page=../../../../etc/passwd"
    assert get(login, "user_agent.original").endswith('"quoted"')
    assert get(login, "http.response.body.bytes") is None
    assert get(junk, "http.response.status_code") == 400 and get(junk, "url.original") is None


def test_netfilter() -> None:
    drop, accept, ufw = parsed("netfilter", "netfilter.log")
    assert fields(drop, "source.ip", "source.port", "destination.ip", "destination.port",
                  "network.transport", "event.outcome") == (
        "203.0.113.5", 51234, "198.19.128.10", 22, "tcp", "failure")
    assert drop["event"]["type"] == ["connection", "denied"]
    assert get(drop, "observer.ingress.interface.name") == "wan0"
    assert accept["event"]["type"] == ["connection", "allowed"]
    assert get(ufw, "labels.netfilter_prefix") == "[UFW BLOCK]"
    assert get(ufw, "event.action") == "drop"


def test_netfilter_numbers_the_kernel_never_writes_leave_the_field_out() -> None:
    """``SPT=²`` passed str.isdigit() and then raised out of int(), losing its batch; a
    20-digit port overflowed the store. The line is kept, without the impossible field."""
    line = ("Nov 22 07:43:17 dc-primary-wrtr1 kernel: nft-drop: IN=wan0 OUT= SRC=203.0.113.5 "
            "DST=198.19.128.10 LEN=99999999999999999999 PROTO=TCP SPT=\u00b2 DPT=70000")
    ev = parse_line("netfilter", line, received=RECEIVED)
    assert ev["source"] == {"ip": "203.0.113.5"}
    assert ev["destination"] == {"ip": "198.19.128.10"}
    assert "bytes" not in ev.get("network", {})


def test_postgresql_default_prefix() -> None:
    evs = parsed("postgresql", "postgresql.log")
    actions = [get(e, "event.action") for e in evs]
    assert actions == ["connection_received", "login_failed", None, "login", "syntax_error",
                       "failed_statement", "disconnection", None, "login_failed"]
    failed = evs[1]
    assert fields(failed, "user.name", "event.outcome", "log.level") == (
        "app", "failure", "fatal")
    assert "authentication" in failed["event"]["category"]
    assert failed["@timestamp"] == "2026-11-22T07:43:17.130Z"
    assert get(evs[0], "source.ip") == "198.19.128.20"
    assert get(evs[5], "postgresql.log.query").startswith("SELECT * FROM claims")
    assert fields(evs[8], "source.ip", "user.name") == ("203.0.113.9", "mallory")


@pytest.mark.parametrize(("prefix", "line", "expect"), [
    ("%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
     "2026-11-22 07:43:17 +07 [99]: [3-1] user=app,db=bhxh,app=psql,client=203.0.113.9 "
     'FATAL:  password authentication failed for user "app"',
     ("2026-11-22T00:43:17.000Z", "203.0.113.9", "login_failed")),
    ("%m %r %e ",
     '2026-11-22 07:43:17.250 UTC 198.19.128.20(51000) 42601 ERROR:  syntax error at or '
     'near "\'"',
     ("2026-11-22T07:43:17.250Z", "198.19.128.20", "syntax_error")),
    ("%n|%c|%-10u|", "1795340000.5|5f1a.2b|app       |LOG:  statement: select 1",
     ("2026-11-22T09:33:20.500Z", None, "statement")),
])
def test_postgresql_custom_prefix(prefix: str, line: str, expect: tuple[str, ...]) -> None:
    ev = parse_line("postgresql", line, options={"log_line_prefix": prefix})
    assert (ev["@timestamp"], get(ev, "source.ip"), get(ev, "event.action")) == expect


def test_a_forwarded_postgresql_line_is_read_with_the_roles_prefix_else_debians() -> None:
    """A database server's log forwarded by rsyslog (the postgresql role's imfile input,
    program postgres) reaches a syslog collector, which has no log_line_prefix for it: the
    role's prefix gives the failed login its client, which the database rules group by;
    a server not set up by the role (Debian's prefix) is still read, without one."""
    role = ('<134>Dec  8 08:00:01 dc-primary-db1 postgres: 2026-12-08 08:00:01.250 +07 '
            '[4242] socctl_app@postgres 198.19.5.10 FATAL:  password authentication failed '
            'for user "socctl_app"')
    ev = parse_line("syslog", role, received=RECEIVED)
    assert fields(ev, "event.dataset", "event.action", "source.ip", "user.name",
                  "host.name", "@timestamp") == (
        "postgresql", "login_failed", "198.19.5.10", "socctl_app", "dc-primary-db1",
        "2026-12-08T01:00:01.250Z")
    debian = role.replace(" 198.19.5.10 FATAL", " FATAL")
    ev = parse_line("syslog", debian, received=RECEIVED)
    assert fields(ev, "event.dataset", "event.action", "source.ip", "user.name") == (
        "postgresql", "login_failed", None, "socctl_app")
    assert "error" not in ev


def test_postgresql_wrong_prefix_is_a_dead_letter_reason() -> None:
    with pytest.raises(ParseError, match="log_line_prefix"):
        parse_line("postgresql", "[4242] app@bhxh LOG:  connection authorized: user=app",
                   options={"log_line_prefix": "%m [%p] %q%u@%d "})
    with pytest.raises(ValueError, match="unknown escape"):
        compile_prefix("%Z ")


def test_frr_syslog_and_file() -> None:
    down, up, zebra, bgp, frr84 = parsed("syslog", "frr.log")
    # FRR 8.4 as the lab's ospfd writes it
    assert fields(frr84, "event.action", "event.outcome", "frr.neighbor", "frr.neighbor_ip",
                  "frr.interface", "event.reason") == (
        "ospf_adjacency_change", "failure", "198.19.255.3", "198.19.0.5", "wan1", "KillNbr")
    assert fields(down, "event.dataset", "event.action", "event.outcome", "frr.neighbor",
                  "frr.interface", "frr.state", "event.code") == (
        "frr", "ospf_adjacency_change", "failure", "198.19.255.101", "wan1", "Deleted",
        "AZ6WF-7E8WC")
    assert get(up, "event.outcome") == "success"
    assert get(zebra, "event.dataset") == "frr" and get(zebra, "event.action") is None
    assert fields(bgp, "event.action", "frr.state") == ("bgp_adjacency_change", "Down")
    own = parse_line("frr", "2026/11/22 07:43:17 OSPF: [AZ6WF-7E8WC] AdjChg: Nbr 198.19.2.1"
                     "(198.19.255.1) on wan1: Full -> Deleted (InactivityTimer)")
    assert own["@timestamp"] == "2026-11-22T07:43:17.000Z"
    assert get(own, "process.name") == "ospfd"


def test_cisco_ios() -> None:
    evs = parsed("cisco_ios", "cisco.log")
    assert [get(e, "event.code") for e in evs] == [
        "SEC_LOGIN-4-LOGIN_FAILED", "SEC_LOGIN-5-LOGIN_SUCCESS", "SYS-5-CONFIG_I",
        "LINK-3-UPDOWN", "SEC-6-IPACCESSLOGP", "OSPF-5-ADJCHG"]
    failed, ok, config, link, acl, ospf = evs
    assert fields(failed, "event.action", "event.outcome", "user.name", "source.ip",
                  "host.name", "log.level") == (
        "login", "failure", "admin", "203.0.113.5", "p01d01-rtr1", "warning")
    assert failed["@timestamp"] == "2026-11-22T07:43:17.000Z"
    assert get(ok, "event.outcome") == "success"
    assert fields(config, "event.action", "user.name") == ("configuration_change", "netops")
    assert get(link, "event.action") == "interface_down"
    assert fields(acl, "source.ip", "destination.port", "event.outcome") == (
        "203.0.113.5", 23, "failure")
    assert get(ospf, "event.outcome") == "failure"
    # the same lines arriving on a generic syslog source are routed to cisco_ios
    assert all(get(parse_line("syslog", line), "event.dataset") == "cisco_ios"
               for line in lines("cisco.log"))


def test_mail_postfix_and_clamav_milter() -> None:
    evs = parsed("syslog", "mail.log")
    by = {get(e, "event.action"): e for e in evs}
    header = by["header_warning"]
    assert fields(header, "event.dataset", "email.subject", "email.from.address",
                  "email.to.address", "source.ip", "email.local_id") == (
        "postfix", "=?UTF-8?B?SMOzYSDEkcahbg==?= Invoice overdue", ["billing@evil.example"],
        ["ketoan@vss.gov.vn"], "203.0.113.20", "4F2A81C0123")
    virus = [e for e in evs if get(e, "event.action") == "virus_found"]
    assert len(virus) == 2
    milter = virus[0]
    assert fields(milter, "event.dataset", "rule.name", "email.subject", "email.to.address") == (
        "clamav", "Win.Test.EICAR_HDB-1", "Invoice overdue", ["ketoan@vss.gov.vn"])
    assert "malware" in milter["event"]["category"]
    assert get(by["reject"], "event.outcome") == "failure"
    assert get(by["reject"], "source.ip") == "198.51.100.66"
    assert fields(by["sasl_login"], "user.name", "event.outcome") == ("ketoan", "failure")
    assert get(by["delivery_sent"], "email.to.address") == ["ketoan@vss.gov.vn"]
    assert get(by["connect"], "source.ip") == "203.0.113.20"


def test_postfix_blocklist_rejections_smtpd_postscreen_and_warn_only() -> None:
    """The spam rules count blocklist rejections per client: smtpd's and postscreen's
    (its own layout: ``[ip]:port:``, commas between fields) name it; a warn_if_reject
    ``reject_warning`` (the mail was then accepted) is told apart from a rejection."""
    smtpd, postscreen, warn = (parse_line("syslog", line, received=RECEIVED) for line in (
        "Nov 22 07:43:14 mail1 postfix/smtpd[222]: NOQUEUE: reject: RCPT from unknown"
        "[198.51.100.66]: 554 5.7.1 Service unavailable; Client host [198.51.100.66] blocked "
        "using zen.spamhaus.org; from=<x@spam.example> to=<hr@vss.gov.vn> proto=ESMTP "
        "helo=<spam.example>",
        "Nov 22 07:43:15 mail1 postfix/postscreen[230]: NOQUEUE: reject: RCPT from "
        "[198.51.100.67]:40712: 550 5.7.1 Service unavailable; client [198.51.100.67] blocked "
        "using zen.spamhaus.org; from=<x@spam.example>, to=<hr@vss.gov.vn>, proto=ESMTP, "
        "helo=<spam.example>",
        "Nov 22 07:43:16 mail1 postfix/smtpd[222]: NOQUEUE: reject_warning: RCPT from "
        "mx.partner.example[198.51.100.68]: 554 5.7.1 Service unavailable; Client host "
        "[198.51.100.68] blocked using b.barracudacentral.org; from=<n@partner.example> "
        "to=<hr@vss.gov.vn> proto=ESMTP helo=<mx.partner.example>"))
    assert fields(smtpd, "event.dataset", "event.action", "event.outcome", "source.ip",
                  "email.to.address") == (
        "postfix", "reject", "failure", "198.51.100.66", ["hr@vss.gov.vn"])
    assert fields(postscreen, "process.name", "event.action", "event.outcome", "source.ip",
                  "email.from.address", "email.to.address") == (
        "postfix/postscreen", "reject", "failure", "198.51.100.67", ["x@spam.example"],
        ["hr@vss.gov.vn"])
    assert fields(warn, "event.action", "event.outcome", "source.ip") == (
        "reject_warning", None, "198.51.100.68")
    assert "blocked using" in get(warn, "event.reason")


def test_postfix_sasl_failure_and_authenticated_client_name_the_user() -> None:
    """SMTP AUTH: a failure names the client (and the account, Postfix 3.x); an
    authenticated client line names the account after its sasl_method."""
    failed, client = (parse_line("syslog", line, received=RECEIVED) for line in (
        "Nov 22 07:43:15 mail1 postfix/submission/smtpd[222]: warning: unknown[203.0.113.21]: "
        "SASL PLAIN authentication failed: authentication failure, sasl_username=ketoan",
        "Nov 22 07:43:16 mail1 postfix/submission/smtpd[222]: 4F2A81C0124: client=unknown"
        "[198.19.128.70], sasl_method=LOGIN, sasl_username=ketoan@vss.gov.vn"))
    assert fields(failed, "event.action", "event.outcome", "source.ip", "user.name") == (
        "sasl_login", "failure", "203.0.113.21", "ketoan")
    assert fields(client, "event.action", "source.ip", "user.name") == (
        "client", "198.19.128.70", "ketoan@vss.gov.vn")


def test_amavis_verdicts_on_the_mail_gateway() -> None:
    """amavis lines in mail.log are routed to their own parser: the verdict, the client
    (first address, handed over by Postfix with XFORWARD), the addresses, the queue id."""
    spam, clean, infected, other = (parse_line("syslog", line, received=RECEIVED) for line in (
        "Nov 22 07:43:17 mail1 amavis[4321]: (04321-07) Blocked SPAM {DiscardedInbound,"
        "Quarantined}, [198.51.100.66]:41234 [198.51.100.66] <x@spam.example> -> "
        "<hr@vss.gov.vn>,<ketoan@vss.gov.vn>, quarantine: spam-AbCd.gz, Queue-ID: 4F2A81C0125, "
        "Message-ID: <9@spam.example>, mail_id: AbCd, Hits: 12.31, size: 4567, 312 ms",
        "Nov 22 07:43:18 mail1 amavis[4321]: (04321-08) Passed CLEAN {RelayedInbound}, "
        "[198.19.128.61]:50000 [198.19.128.61] <a@partner.example> -> <hr@vss.gov.vn>, "
        "Queue-ID: 4F2A81C0126, Message-ID: <1@partner.example>, mail_id: EfGh, Hits: -1.2, "
        "size: 2345, queued_as: 5B1C2D3E4F, 250 ms",
        "Nov 22 07:43:19 mail1 amavisd[4321]: (04321-09) Blocked INFECTED "
        "(Win.Trojan.Emotet-9953378-0) {DiscardedInbound,Quarantined}, [198.51.100.67]:40000 "
        "[198.51.100.67] <> -> <hr@vss.gov.vn>, Queue-ID: 4F2A81C0127, mail_id: IjKl, "
        "Hits: -, size: 9000, 400 ms",
        "Nov 22 07:43:20 mail1 amavis[4300]: SpamControl: init_pre_fork on SpamAssassin done"))
    assert fields(spam, "event.dataset", "event.action", "event.outcome", "source.ip",
                  "email.from.address", "email.to.address", "email.local_id") == (
        "amavis", "blocked_spam", "failure", "198.51.100.66", ["x@spam.example"],
        ["hr@vss.gov.vn", "ketoan@vss.gov.vn"], "4F2A81C0125")
    assert fields(clean, "event.action", "event.outcome", "source.ip") == (
        "passed_clean", "success", "198.19.128.61")
    assert fields(infected, "event.action", "rule.name", "email.from.address") == (
        "blocked_infected", "Win.Trojan.Emotet-9953378-0", None)
    assert "malware" in infected["event"]["category"]
    assert fields(other, "event.dataset", "event.action") == ("amavis", None)


def test_clamd_log_file() -> None:
    found, selfcheck = parsed("clamav", "clamav.log")
    assert fields(found, "rule.name", "file.name", "@timestamp") == (
        "Win.Trojan.Agent-123", "invoice.pdf.exe", "2026-11-22T07:43:17.000Z")
    assert get(selfcheck, "event.action") is None


def test_snmp_trap_lines() -> None:
    link, auth = parsed("snmp.trap", "snmp-trap.log")
    assert fields(link, "event.action", "source.ip", "snmp.if_index", "event.outcome") == (
        "link_down", "198.18.0.5", "2", "failure")
    assert fields(auth, "event.action", "user.name", "event.category") == (
        "authentication_failure", "socctl", ["authentication"])
    with pytest.raises(ParseError, match="not JSON"):
        parse_line("snmp.trap", "linkDown from somewhere")


def test_rfc5424() -> None:
    ospf, ssh, app, forwarded = parsed("syslog", "rfc5424.log")
    # rsyslog's RSYSLOG_SyslogProtocol23Format keeps the space before %msg%: "-  Invalid"
    assert fields(forwarded, "event.action", "user.name", "host.name") == (
        "invalid_user", "probe1", "dc-primary-log1")
    assert ospf["@timestamp"] == "2026-11-22T00:43:17.123Z"
    assert fields(ospf, "event.dataset", "host.name", "process.pid", "log.syslog.priority",
                  "log.syslog.facility.code", "log.level") == (
        "frr", "p01-rtr1", 812, 34, 4, "critical")
    assert get(ssh, "log.syslog.structured_data") == '[origin ip="198.18.0.3"]'
    assert get(ssh, "event.action") == "ssh_login"
    assert fields(app, "log.syslog.msgid", "message") == (
        "ID47", "BOM and unicode: Bảo hiểm xã hội")


@pytest.mark.parametrize(("dataset", "line", "reason"), [
    ("nginx.access", "this is not an access log line", "combined-format"),
    ("sshd", "Failed password for root\x00 from 1.2.3.4", "NUL byte"),
    ("syslog", "no header at all", "no syslog header"),
    ("syslog", "bad \udcff utf8", "invalid UTF-8"),
    ("sshd", "x" * 70000, "too long"),
    ("netfilter", "Nov 22 07:43:17 h kernel: something else", "not a netfilter"),
    ("cisco_ios", "<189>1: no mnemonic here", "no Cisco"),
    ("sshd", "   ", "empty"),
])
def test_unparseable_lines_raise_a_reason(dataset: str, line: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_line(dataset, line)


def test_routed_line_that_its_parser_rejects_stays_a_generic_event() -> None:
    ev = parse_line("syslog", "Nov 22 07:43:17 web1 nginx: not combined at all")
    assert get(ev, "event.dataset") == "syslog"
    assert "combined" in get(ev, "error.message")


def test_year_is_inferred_for_bsd_timestamps() -> None:
    jan_2 = 1798848000.0  # 2027-01-02T00:00:00Z
    ev = parse_line("syslog", "Dec 31 23:59:59 h sshd[1]: x", received=jan_2)
    assert ev["@timestamp"] == "2026-12-31T23:59:59.000Z"
    # Cisco's own stamp too, from the reception time (it used the wall clock: the fixtures'
    # "Nov 22" would have become the next year's once the calendar passed it)
    cisco = ("<189>123: p01d01-rtr1: *Dec 31 23:59:59.000 UTC: %SYS-5-CONFIG_I: Configured "
             "from console by netops on vty0 (198.18.0.1)")
    assert parse_line("cisco_ios", cisco, received=jan_2)["@timestamp"] == \
        "2026-12-31T23:59:59.000Z"
    assert parse_line("cisco_ios", cisco.replace("Dec 31", "Nov 22"),
                      received=1826841600.0)["@timestamp"] == "2027-11-22T23:59:59.000Z"


HANOI = {"timezone": "Asia/Ho_Chi_Minh"}  # UTC+7, as the agency's devices log
PG = "[4242] app@bhxh FATAL:  password authentication failed for user \"app\""
CISCO = "%SYS-5-CONFIG_I: Configured from console by netops on vty0 (198.18.0.1)"


@pytest.mark.parametrize(("dataset", "line", "utc"), [
    # written without a zone: read in the collector's
    ("syslog", "Nov 22 14:43:17 p01-rtr1 sshd[812]: Failed password for root from "
               "203.0.113.5 port 4242 ssh2", "2026-11-22T07:43:17.000Z"),
    ("syslog", "2026-11-22T14:43:17 p01-rtr1 sshd[812]: Connection closed by 203.0.113.5",
     "2026-11-22T07:43:17.000Z"),
    ("frr", "2026/11/22 14:43:17 OSPF: [AZ6WF-7E8WC] AdjChg: Nbr 198.19.2.1(198.19.255.1) on "
            "wan1: Full -> Deleted (InactivityTimer)", "2026-11-22T07:43:17.000Z"),
    ("clamav", "Sun Nov 22 14:43:17 2026 -> /var/spool/x/invoice.pdf.exe: "
               "Win.Trojan.Agent-123 FOUND", "2026-11-22T07:43:17.000Z"),
    ("cisco_ios", f"<189>125: p01d01-rtr1: *Nov 22 14:43:17.123: {CISCO}",
     "2026-11-22T07:43:17.000Z"),
    ("postgresql", f"2026-11-22 14:43:17.123 {PG}", "2026-11-22T07:43:17.123Z"),
    # a zone the line writes wins: an offset, Z, or an unambiguous name
    ("syslog", "2026-11-22T07:43:17Z p01-rtr1 sshd[812]: Connection closed by 203.0.113.5",
     "2026-11-22T07:43:17.000Z"),
    ("syslog", "<38>1 2026-11-22T16:43:17+09:00 p01-rtr1 sshd 812 - - Connection closed",
     "2026-11-22T07:43:17.000Z"),
    ("cisco_ios", f"<189>125: p01d01-rtr1: *Nov 22 07:43:17.123 UTC: {CISCO}",
     "2026-11-22T07:43:17.000Z"),
    ("cisco_ios", f"<189>125: p01d01-rtr1: *Nov 22 2026 14:43:17.123 ICT: {CISCO}",
     "2026-11-22T07:43:17.000Z"),
    ("postgresql", f"2026-11-22 07:43:17.123 UTC {PG}", "2026-11-22T07:43:17.123Z"),
    ("postgresql", f"2026-11-22 16:43:17.123 +09 {PG}", "2026-11-22T07:43:17.123Z"),
    ("postgresql", f"2026-11-22 14:43:17.123 CST {PG}", "2026-11-22T07:43:17.123Z"),  # ambiguous
])
def test_times_without_a_zone_are_read_in_the_collectors_zone(dataset: str, line: str,
                                                              utc: str) -> None:
    """Read as UTC, every RFC 3164 line from a device logging in UTC+7 was seven hours in
    the future, out of step with nginx, PostgreSQL and RFC 5424 lines, which say their
    zone."""
    assert parse_line(dataset, line, received=RECEIVED, options=HANOI)["@timestamp"] == utc


def test_the_year_of_a_bsd_time_is_the_year_where_it_was_written() -> None:
    """00:00:05 on 1 January in Hanoi is still 31 December in UTC: the year comes from
    the reception time in the collector's zone, not in UTC."""
    new_year = 1798736410.0  # 2026-12-31T17:00:10Z = 2027-01-01T00:00:10+07:00
    ev = parse_line("syslog", "Jan  1 00:00:05 h sshd[1]: x", received=new_year,
                    options=HANOI)
    assert ev["@timestamp"] == "2026-12-31T17:00:05.000Z"
    ev = parse_line("syslog", "Dec 31 23:59:59 h sshd[1]: x", received=new_year,
                    options=HANOI)
    assert ev["@timestamp"] == "2026-12-31T16:59:59.000Z"


def test_an_unknown_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Asia/Hanoi'"):
        parse_line("syslog", "Nov 22 14:43:17 h sshd[1]: x", options={"timezone": "Asia/Hanoi"})


def _all_fixture_lines() -> list[tuple[str, str]]:
    datasets: dict[str, str] = {
        "sshd-E.log": "sshd", "auth.log": "syslog", "nginx-access.log": "nginx.access",
        "nginx-error.log": "nginx.error",
        "apache-access.log": "apache.access", "netfilter.log": "netfilter",
        "postgresql.log": "postgresql", "frr.log": "syslog", "cisco.log": "cisco_ios",
        "mail.log": "syslog", "clamav.log": "clamav", "snmp-trap.log": "snmp.trap",
        "rfc5424.log": "syslog"}
    assert sorted(datasets) == sorted(p.name for p in VALID.glob("*.log"))
    return [(ds, line) for name, ds in datasets.items() for line in lines(name)]


@pytest.mark.parametrize(("dataset", "line"), _all_fixture_lines())
def test_every_event_has_the_ecs_basics(dataset: str, line: str) -> None:
    ev = parse_line(dataset, line, received=RECEIVED)
    check: Callable[[str], Any] = lambda name: get(ev, name)  # noqa: E731
    assert check("ecs.version") and check("event.kind") == "event"
    assert check("event.dataset") in DATASETS and check("event.module")
    assert check("log.original") == line.rstrip("\r\n")
    assert isinstance(ev["@timestamp"], str) and ev["@timestamp"].endswith("Z")
    for multi in ("event.category", "event.type"):
        assert check(multi) is None or isinstance(check(multi), list)


def test_fixture_folder_exists() -> None:
    assert isinstance(VALID, Path) and VALID.is_dir()


# -- ids of network syslog lines ------------------------------------------------------------
def test_a_repeated_line_is_a_new_event_wherever_the_table_is_bounded() -> None:
    """Equal lines a few distinct lines apart are two events, at every position relative
    to the table's bound. (Cleared whole at its limit, the table gave a repeat just after
    the clear its first copy's id, and the store ignored it as a re-send.)"""
    for fillers in range(40):
        ids = OccurrenceIds("tcp|198.18.0.7", limit=8)
        for k in range(fillers):
            ids.next("syslog", f"filler {k}")
        first = ids.next("syslog", "kernel: link down")
        for k in range(3):  # fewer than limit // 2 distinct lines in between
            ids.next("syslog", f"other {fillers} {k}")
        assert ids.next("syslog", "kernel: link down") != first, fillers


def test_occurrence_ids_are_the_same_when_the_stream_is_sent_again() -> None:
    """A collector restarted (kill -9) gets the same stream again from its senders: the
    same ids, repeats and the table's bound included, so the store keeps one copy."""
    stream: list[str] = []
    for k in range(200):  # the table's bound passed many times, a repeat every third line
        stream += [f"line {k}", "kernel: link down"] if k % 2 == 0 else [f"line {k}"]

    def ids_of() -> list[str]:
        ids = OccurrenceIds("tcp|198.18.0.7", limit=8)
        return [ids.next("syslog", line) for line in stream]

    first = ids_of()
    assert first == ids_of()
    assert len(set(first)) == len(first)  # every occurrence, repeats too, is its own event


def test_occurrence_ids_forget_lines_long_gone() -> None:
    """The table is bounded: far more distinct lines than its limit later, a line counts
    from 0 again (so memory does not grow with the stream)."""
    ids = OccurrenceIds("tcp|198.18.0.7", limit=8)
    first = ids.next("syslog", "kernel: link down")
    for k in range(100):
        ids.next("syslog", f"filler {k}")
    assert ids.next("syslog", "kernel: link down") == first


def test_rfc3164_year_at_new_year_and_a_stamp_seen_early() -> None:
    """A sender a few seconds ahead at New Year had its line put a year back; and the
    year chosen for a stamp was cached: one early sighting (a skewed clock) fixed the
    wrong year for every later genuine line with that stamp."""
    from datetime import UTC, datetime

    from socctl.collector.syslog import Zone, bsd_to_epoch

    def at(text: str) -> float:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()

    zone = Zone("UTC")
    assert bsd_to_epoch("Jan", "1", "00", "00", "03", at("2024-12-31T23:59:58"),
                        zone) == at("2025-01-01T00:00:03")
    assert bsd_to_epoch("Dec", "31", "23", "59", "59", at("2025-01-01T00:00:05"),
                        zone) == at("2024-12-31T23:59:59")
    early = bsd_to_epoch("Jan", "9", "00", "00", "00", at("2025-01-02T00:00:00"), zone)
    assert early == at("2024-01-09T00:00:00")  # 7 days ahead: last year's, by the rule
    assert bsd_to_epoch("Jan", "9", "00", "00", "00", at("2025-01-09T00:00:01"),
                        zone) == at("2025-01-09T00:00:00")
    # an old file replayed late in the year stays in its year
    assert bsd_to_epoch("Jun", "1", "12", "00", "00", at("2024-12-30T00:00:00"),
                        zone) == at("2024-06-01T12:00:00")


def test_an_ipv6_address_is_one_text_whoever_wrote_it() -> None:
    """ip6tables' LOG writes every zero, Cisco upper case, sshd what the client sent: one
    attacker was three source.ip values, to searches and to the correlations grouping by
    it. Addresses are stored compressed, lower case; an IPv4 client on an IPv6 socket as
    its IPv4 address."""
    lines = [
        ("netfilter", "Nov 22 08:00:01 dc-primary-wrtr1 kernel: [81234.000001] DROP IN=eth1 "
         "OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:86:dd "
         "SRC=2001:0db8:0000:0000:0000:0000:0000:0007 "
         "DST=2001:0DB8:0000:0000:0000:0000:0000:0001 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=0 "
         "PROTO=TCP SPT=4444 DPT=22 WINDOW=64800 RES=0x00 SYN URGP=0"),
        ("syslog", "Nov 22 08:00:02 dc-primary-db1 sshd[1]: Failed password for root from "
         "2001:DB8::7 port 4444 ssh2"),
        ("nginx.access", '2001:db8:0:0::7 - - [22/Nov/2026:08:00:03 +0000] "GET / HTTP/1.1" '
         '200 10 "-" "curl/8"'),
    ]
    events = [parse_line(dataset, line, received=1795340000.0) for dataset, line in lines]
    assert [get(ev, "source.ip") for ev in events] == ["2001:db8::7"] * 3
    assert get(events[0], "destination.ip") == "2001:db8::1"
    mapped = parse_line("syslog", "Nov 22 08:00:02 h sshd[1]: Failed password for root from "
                        "::ffff:198.18.7.7 port 4444 ssh2", received=1795340000.0)
    assert get(mapped, "source.ip") == "198.18.7.7"
    # the line itself is kept as written
    assert "SRC=2001:0db8:0000" in events[0]["log"]["original"]


def test_the_firewall_roles_ulogd_lines_are_netfilter_events() -> None:
    """The lab's firewalls log drops by NFLOG to ulogd2, which writes the kernel's text
    under its own program name; routed like the kernel's, not kept as a generic line."""
    ev = parse_line("syslog", "2026-12-07T19:24:08.121048+00:00 p79-rtr1 ulogd[459]: "
                    "socctl-fw drop:  IN=mgmt0 OUT= MAC=56:f0:b3:1a:92:e5:0a:1e:44:d4:b5:96:08:00 "
                    "SRC=198.18.0.1 DST=198.18.0.18 LEN=44 TOS=00 PREC=0x00 TTL=41 ID=51633 "
                    "PROTO=TCP SPT=56295 DPT=25 SEQ=2463136951 ACK=0 WINDOW=1024 SYN URGP=0 "
                    "MARK=0x0 ")
    assert fields(ev, "event.dataset", "event.action", "source.ip", "destination.port",
                  "process.name") == ("netfilter", "drop", "198.18.0.1", 25, "ulogd")
    # a program of another name writing such a line is not taken for the firewall
    other = parse_line("syslog", "2026-12-07T19:24:08Z h1 myapp: IN=x OUT= SRC=1.2.3.4")
    assert get(other, "event.dataset") == "syslog"


@pytest.mark.parametrize(("line", "app", "pid", "message"), [
    ("2026-11-22T07:43:17Z h1 sshd[42] Failed password for root from 198.18.9.9 port 22 ssh2",
     "sshd", 42, "Failed password for root from 198.18.9.9 port 22 ssh2"),
    ("2026-11-22T07:43:17Z h1 sshd no procid", "sshd", None, "no procid"),
    ("2026-11-22T07:43:17Z h1 - no app name", None, None, "no app name"),
    ("2026-11-22T07:43:17Z h1 app[7] :a message that starts with a colon", "app", 7,
     ":a message that starts with a colon"),
    ("2026-11-22T07:43:17+00:00 h2 sshd[42]: a BSD message", "sshd", 42, "a BSD message"),
])
def test_a_collectors_file_of_rfc5424_messages_is_read(line: str, app: str | None,
                                                       pid: int | None, message: str) -> None:
    """rsyslog writes a forwarded RFC 5424 message to a file with no colon after its tag
    (``sshd[42] Failed ...``, ``-`` for no APP-NAME): every line of the DC collectors' files
    was a dead letter ("no syslog header")."""
    ev = parse_line("syslog", line)
    assert (get(ev, "process.name"), get(ev, "process.pid"), ev["message"]) == (
        app, pid, message)
    assert get(ev, "host.name") in ("h1", "h2")
