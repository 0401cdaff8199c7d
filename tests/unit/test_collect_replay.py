"""`socctl collect replay` and enrichment: files in, counts out, nothing lost or doubled."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import shutil
import sqlite3
from pathlib import Path

import yaml

from socctl.collector.definition import load_collection
from socctl.collector.enrich import BotnetList, Enricher
from socctl.collector.parse import parse_line
from socctl.collector.pipeline import Processor
from socctl.inventory import load_inventory
from tests.conftest import REPO
from tests.unit.test_cli import socctl
from tests.unit.test_collector_parse import VALID


def replay(state: Path, source: str, *files: Path) -> dict[str, int]:
    result = socctl("-o", "json", "collect", "replay", "--source", source,
                    *map(str, files), env={"SOCCTL_STATE_DIR": str(state)})
    assert result.returncode == 0, result.stderr
    data: dict[str, int] = json.loads(result.stdout)
    return data


def test_replay_counts_reconcile_and_replay_again_stores_nothing(tmp_path: Path) -> None:
    first = replay(tmp_path, "auth", VALID / "auth.log")
    assert (first["read"], first["stored"], first["dead_letter"]) == (11, 11, 0)
    again = replay(tmp_path, "auth", VALID / "auth.log")
    assert (again["read"], again["stored"], again["dead_letter"]) == (11, 0, 0)
    assert again["duplicates"] == 11
    db = sqlite3.connect(tmp_path / "events.db")
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 11
    site = db.execute("SELECT socctl_site, socctl_tier FROM events WHERE host_name = "
                      "'dc-primary-log1' LIMIT 1").fetchone()
    assert site == ("dc-primary", "dc")  # enriched from the (national) inventory


def test_ids_lead_with_the_lines_own_time_and_not_with_its_arrival() -> None:
    """Time first keeps the store's primary key growing at its end (ecs.time_ordered); a
    line sent again later must still map onto the same id, with or without a time."""
    proc = Processor(load_collection(REPO / "collectors").get("syslog-tcp"))
    timed = ("<38>Nov 22 07:43:17 p01-rtr1 sshd[812]: Failed password for root from "
             "203.0.113.5 port 1024 ssh2")
    content = "0123456789abcdef" * 2
    first, again = (proc.row(timed, received, content) for received in (1795340000.5,
                                                                       1795343600.25))
    assert first[0] == again[0] == f"{int(first[1]):08x}" + content[8:]
    assert json.loads(first[-1])["event"]["id"] == first[0]
    assert proc.row(timed.replace("07:43:17", "07:43:18"), 1795340000.5, content)[0] > \
        first[0]
    untimed = "<189>123: %SYS-5-CONFIG_I: Configured from console by netops"
    first, again = (proc.row(untimed, received, content) for received in (1795340000.5,
                                                                         1795343600.25))
    assert first[0] == again[0] == "00000000" + content[8:]
    assert first[1] != again[1]  # its @timestamp is the arrival


def test_zone_less_times_are_read_in_this_hosts_zone_or_the_collectors(tmp_path: Path
                                                                        ) -> None:
    """collect.yaml's ``timezone: local``: rsyslog beside the collector and the agency's
    devices write RFC 3164 times, which carry no zone, in the host's zone (UTC+7 in
    Hanoi); read as UTC they were seven hours in the future. A collector whose devices
    log in another zone says so in its parser.timezone."""
    line = ("Nov 22 14:43:17 p01-rtr1 sshd[812]: Failed password for root from 203.0.113.5 "
            "port 4242 ssh2")
    log = tmp_path / "auth.log"
    log.write_text(line + "\n")
    for tz, expect in (("Asia/Ho_Chi_Minh", "-11-22T07:43:17.000Z"),
                       ("UTC", "-11-22T14:43:17.000Z")):
        env = {"SOCCTL_STATE_DIR": str(tmp_path / tz.replace("/", "-")), "TZ": tz}
        assert socctl("collect", "replay", "--source", "auth", str(log), env=env).returncode == 0
        found = socctl("events", "search", "user.name:root", "--since", "100000d", "-o",
                       "json", env=env)
        stamps = [e["@timestamp"] for e in json.loads(found.stdout)]
        assert len(stamps) == 1 and stamps[0].endswith(expect), (tz, stamps)
    folder = tmp_path / "collectors"
    shutil.copytree(REPO / "collectors", folder)
    auth = folder / "sources" / "auth.yaml"
    auth.write_text(auth.read_text().replace("  dataset: syslog\n",
                                             "  dataset: syslog\n  timezone: Asia/Ho_Chi_Minh\n"))
    collection = load_collection(folder)
    assert collection.get("auth").timezone == "Asia/Ho_Chi_Minh"
    assert collection.get("sshd").timezone == "local"  # this process runs in UTC (conftest)
    received = 1795340000.0  # 2026-11-22T09:33:20Z
    own, _ = Processor(collection.get("auth")).event(line, received, "0" * 32)
    host, _ = Processor(collection.get("sshd")).event(line, received, "0" * 32)
    assert host - own == 7 * 3600


def test_rotated_logs_compressed_by_logrotate_are_read_decompressed(tmp_path: Path) -> None:
    """An investigation replays last week's auth.log.2.gz: read as bytes, it was one dead
    letter of binary garbage. gzip, bzip2 and xz are told by their first bytes. Each
    store is its own here: the same text compressed otherwise is the same events."""
    text = (VALID / "auth.log").read_bytes()
    for name, pack in (("auth.log.2.gz", gzip.compress), ("auth.log.3.bz2", bz2.compress),
                       ("auth.log.4.xz", lzma.compress)):
        packed = tmp_path / name
        packed.write_bytes(pack(text))
        first = replay(tmp_path / f"state-{name}", "auth", packed)
        assert (first["read"], first["stored"], first["dead_letter"]) == (11, 11, 0), name
        db = sqlite3.connect(tmp_path / f"state-{name}" / "events.db")
        plain = {row[0] for row in db.execute("SELECT message FROM events")}
        assert plain == {line for line in text.decode().splitlines() if line.strip()}


def test_the_same_log_under_its_rotated_name_or_compressed_is_not_stored_twice(
        tmp_path: Path) -> None:
    """An investigator replays auth.log.1 today and, after logrotate, auth.log.2.gz: ids
    by path stored every event twice (and a threshold rule counted double). Ids are the
    file's first line, the offset and the line. Two logs that only begin alike keep their
    own lines."""
    text = (VALID / "auth.log").read_bytes()
    state = tmp_path / "state"
    (tmp_path / "auth.log.1").write_bytes(text)
    assert replay(state, "auth", tmp_path / "auth.log.1")["stored"] == 11
    (tmp_path / "auth.log.2.gz").write_bytes(gzip.compress(text))
    again = replay(state, "auth", tmp_path / "auth.log.2.gz")
    assert (again["read"], again["stored"], again["duplicates"]) == (11, 0, 11)
    first, *rest = text.splitlines(keepends=True)
    other = rest[-1].replace(b"USER=root", b"USER=toor")  # same length: same offsets
    (tmp_path / "other.log").write_bytes(first + b"".join(rest[:-1]) + other)
    alike = replay(state, "auth", tmp_path / "other.log")
    assert (alike["stored"], alike["duplicates"]) == (1, 10)


def test_a_truncated_gzip_stores_what_it_holds_and_says_where_it_broke(tmp_path: Path) -> None:
    lines = b"".join(b"Nov 22 07:43:%02d p01-rtr1 sshd[812]: Failed password for root from "
                     b"203.0.113.5 port %d ssh2\n" % (k % 60, 1024 + k) for k in range(4000))
    cut = tmp_path / "auth.log.5.gz"
    whole = gzip.compress(lines)
    cut.write_bytes(whole[:len(whole) // 2])
    env = {"SOCCTL_STATE_DIR": str(tmp_path / "state")}
    out = socctl("-o", "json", "collect", "replay", "--source", "auth", str(cut), env=env)
    assert out.returncode == 1
    assert f"{cut}: gzip unreadable after " in out.stderr, out.stderr
    db = sqlite3.connect(tmp_path / "state" / "events.db")
    stored = db.execute("SELECT count(*) FROM events").fetchone()[0]
    assert 0 < stored < 4000
    assert socctl("collect", "replay", "--source", "auth", str(cut), env=env).returncode == 1
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == stored  # none twice


def test_dead_letters_retried_once_the_parser_is_mended_become_events(tmp_path: Path) -> None:
    """A server logging with another log_line_prefix: every line a dead letter. Once the
    collector's prefix is mended, ``dead-letter --retry`` stores them and empties the
    table; a line that cannot be an event (a NUL byte) stays with its reason, and a
    second retry stores nothing twice."""
    project = tmp_path / "project"
    shutil.copytree(REPO / "collectors", project / "collectors")
    env = {"SOCCTL_STATE_DIR": str(tmp_path / "state"), "SOCCTL_PROJECT_ROOT": str(project),
           "SOCCTL_INVENTORY": str(REPO / "inventory")}
    log = tmp_path / "postgresql.log"
    log.write_bytes(b"".join(
        b"2026-11-22 07:43:%02d +07 [99]: [3-1] user=app,db=bhxh,app=psql,client=203.0.113.9 "
        b'FATAL:  password authentication failed for user "app"\n' % k for k in range(5))
        + b"2026-11-22 07:43:59 +07 [99]: \x00\n")
    first = json.loads(socctl("-o", "json", "collect", "replay", "--source", "postgresql",
                              str(log), env=env).stdout)
    assert (first["stored"], first["dead_letter"]) == (0, 6)
    definition = project / "collectors" / "sources" / "postgresql.yaml"
    shipped = definition.read_text()
    prefix = yaml.safe_load(shipped)["parser"]["options"]["log_line_prefix"]
    assert f'"{prefix}"' in shipped
    definition.write_text(shipped.replace(
        f'"{prefix}"', '"%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h "'))
    retried = socctl("-o", "json", "collect", "dead-letter", "--retry", "--source",
                     "postgresql", env=env)
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout) == {"retried": 6, "stored": 5, "duplicates": 0,
                                          "dead_letter": 1}
    db = sqlite3.connect(tmp_path / "state" / "events.db")
    assert db.execute("SELECT count(*) FROM events WHERE source_ip = '203.0.113.9' AND "
                      "event_action = 'login_failed'").fetchone()[0] == 5
    assert db.execute("SELECT reason FROM dead_letter").fetchall() == [("NUL byte in line",)]
    again = json.loads(socctl("-o", "json", "collect", "dead-letter", "--retry",
                              env=env).stdout)
    assert again == {"retried": 1, "stored": 0, "duplicates": 0, "dead_letter": 1}
    # the mended collector reading the same file again: the same events, none twice
    third = json.loads(socctl("-o", "json", "collect", "replay", "--source", "postgresql",
                              str(log), env=env).stdout)
    assert (third["stored"], third["duplicates"], third["dead_letter"]) == (0, 5, 1)
    bad = socctl("collect", "dead-letter", "--retry", "--source", "postgres", env=env)
    assert bad.returncode == 1 and "no collector named 'postgres'" in bad.stderr


def test_replay_hostile_file_dead_letters_with_raw_bytes(tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.log"
    good = (VALID / "sshd-E.log").read_bytes()
    hostile.write_bytes(good + b"Failed password for root from 1.2.3.4\x00 port 1 ssh2\n"
                        + b"Invalid user \xff\xfe from 203.0.113.5 port 1\n"
                        + b"A" * (1 << 20) + b"\n" + b"\n\n")
    counts = replay(tmp_path / "state", "sshd", hostile)
    assert counts["read"] == 11 and counts["stored"] == 8 and counts["dead_letter"] == 3
    assert counts["read"] == counts["stored"] + counts["dead_letter"]
    db = sqlite3.connect(tmp_path / "state" / "events.db")
    rows = db.execute("SELECT reason, raw FROM dead_letter ORDER BY seq").fetchall()
    assert [r[0] for r in rows] == ["NUL byte in line", "invalid UTF-8",
                                    "line too long (1048576 characters, limit 65536)"]
    assert rows[1][1] == b"Invalid user \xff\xfe from 203.0.113.5 port 1"
    assert len(rows[2][1]) == 1 << 20
    listed = socctl("-o", "json", "collect", "dead-letter",
                    env={"SOCCTL_STATE_DIR": str(tmp_path / "state")})
    assert json.loads(listed.stdout)[0]["reason"].startswith("line too long")


def test_replay_unknown_source_lists_valid_ones(tmp_path: Path) -> None:
    result = socctl("collect", "replay", "--source", "nginxx", str(VALID / "auth.log"),
                    env={"SOCCTL_STATE_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert "no collector named 'nginxx'" in result.stderr and "did you mean nginx" in result.stderr


def test_events_search_cli(tmp_path: Path) -> None:
    replay(tmp_path, "mail", VALID / "mail.log")
    env = {"SOCCTL_STATE_DIR": str(tmp_path)}
    found = socctl("-o", "json", "events", "search", "event.action:virus_found", env=env)
    assert found.returncode == 0, found.stderr
    assert [e["rule"]["name"] for e in json.loads(found.stdout)] == ["Win.Test.EICAR_HDB-1"] * 2
    table = socctl("events", "search", "source.ip:203.0.113.20", "--limit", "2", env=env)
    assert table.returncode == 0 and "2 events" in table.stdout
    bad = socctl("events", "search", "event.action:(", env=env)
    assert bad.returncode == 1 and "no value for field 'event.action'" in bad.stderr
    since = socctl("-o", "json", "events", "search", "--since", "1s", env=env)
    assert json.loads(since.stdout) == []  # the fixture lines are older than a second


def test_enrichment_by_name_and_management_ip_and_botnet(tmp_path: Path) -> None:
    inv = load_inventory(REPO / "inventory", "lab")
    listfile = tmp_path / "botnet.txt"
    listfile.write_text("# test\n203.0.113.0/25\n198.51.100.66\n", encoding="utf-8")
    botnet, problems = BotnetList.load(listfile)
    assert problems == []
    enrich = Enricher(inv, botnet)
    by_name = parse_line("syslog", "Nov 22 07:43:17 p01d01-rtr1 sshd[1]: Failed password for "
                         "root from 203.0.113.5 port 22 ssh2", enrich=enrich)
    assert by_name["socctl"] == {"site": "p01d01", "tier": "district", "province": "01"}
    assert by_name["threat"]["indicator"]["ip"] == "203.0.113.5"
    assert by_name["threat"]["indicator"]["provider"] == "NCSC"
    # no host name in the line (sshd -E file): the sender's management address decides
    ev = parse_line("sshd", "Accepted publickey for root from 198.18.0.1 port 1 ssh2")
    p79 = str(inv.devices["p79-rtr1"].management.ip)
    enrich.apply(ev, peer=p79)
    assert ev["socctl"] == {"site": "p79", "tier": "province", "province": "79"}
    assert ev["host"] == {"ip": p79, "name": "p79-rtr1"}
    assert "threat" not in ev
    frr = parse_line("syslog", "Nov 22 07:43:17 dc-primary-wrtr1 ospfd[1]: AdjChg: Nbr "
                     "198.19.0.2(x) on wan1: Full -> Deleted", enrich=enrich)
    assert frr["socctl"] == {"site": "dc-primary", "tier": "dc"}
    assert frr["observer"]["name"] == "dc-primary-wrtr1"
    dst = parse_line("netfilter", "kernel: nft-accept: IN=a OUT=b SRC=198.19.128.10 "
                     "DST=198.51.100.66 PROTO=TCP SPT=1 DPT=443", enrich=enrich)
    assert dst["threat"]["indicator"]["ip"] == "198.51.100.66"
    assert dst["labels"]["botnet_match"] == "destination"
    outside = parse_line("sshd", "Failed password for root from 203.0.113.200 port 1 ssh2",
                         enrich=enrich)
    assert "threat" not in outside  # 203.0.113.128/25 is not on the list


def test_enrichment_and_the_botnet_list_read_addresses_however_written(tmp_path: Path) -> None:
    """An IPv4 router seen on an IPv6 listener (``::ffff:a.b.c.d``) lost its site, and an
    IPv6 entry of the list missed ip6tables' full form and Cisco's upper case."""
    inv = load_inventory(REPO / "inventory", "lab")
    listfile = tmp_path / "botnet.txt"
    listfile.write_text("2001:db8::66\n203.0.113.9\n", encoding="utf-8")
    botnet, problems = BotnetList.load(listfile)
    assert problems == []
    for written in ("2001:0db8:0000:0000:0000:0000:0000:0066", "2001:DB8::66",
                    "::ffff:203.0.113.9", "203.0.113.9"):
        assert botnet.match(written), written
    assert not botnet.match("2001:db8::67") and not botnet.match("::ffff:203.0.113.10")
    enrich = Enricher(inv, botnet)
    ev = parse_line("sshd", "Accepted publickey for root from 198.18.0.1 port 1 ssh2")
    p79 = str(inv.devices["p79-rtr1"].management.ip)
    enrich.apply(ev, peer=f"::ffff:{p79}")
    assert ev["socctl"] == {"site": "p79", "tier": "province", "province": "79"}
    assert ev["host"] == {"ip": p79, "name": "p79-rtr1"}
