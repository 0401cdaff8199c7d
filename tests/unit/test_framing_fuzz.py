"""RFC 6587 framing and the syslog parsers under hostile and random input (hypothesis)."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from socctl.collector.ecs import ParseError
from socctl.collector.framing import Framer
from socctl.collector.parse import DATASETS, format_ts, parse_event
from socctl.collector.syslog import parse_header


def feed_all(framer: Framer, chunks: list[bytes]) -> list[tuple[bytes, str | None]]:
    out = []
    for chunk in chunks:
        out += framer.feed(chunk)
    return out + framer.close()


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


messages = st.lists(st.binary(min_size=1, max_size=300).filter(lambda b: b.strip(b" \t\x00")
                                                               and b"\n" not in b),
                    min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(messages, st.lists(st.integers(min_value=0), max_size=20))
def test_octet_counting_round_trips_any_split(msgs: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(b"%d %s" % (len(m), m) for m in msgs)
    got = feed_all(Framer("octet"), split(stream, cuts))
    assert got == [(m, None) for m in msgs]


@settings(max_examples=300, deadline=None)
@given(messages, st.lists(st.integers(min_value=0), max_size=20))
def test_newline_framing_round_trips_any_split(msgs: list[bytes], cuts: list[int]) -> None:
    clean = [m.rstrip(b"\r") for m in msgs if m.rstrip(b"\r").strip(b" \t\x00")]
    stream = b"".join(m + b"\n" for m in clean)
    got = feed_all(Framer("newline"), split(stream, cuts))
    assert got == [(m, None) for m in clean]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=4000), st.lists(st.integers(min_value=0), max_size=10),
       st.sampled_from(["auto", "octet", "newline"]))
def test_any_bytes_never_crash_and_stay_bounded(data: bytes, cuts: list[int],
                                                mode: str) -> None:
    framer = Framer(mode, max_len=512)  # type: ignore[arg-type]
    for raw, reason in feed_all(framer, split(data, cuts)):
        assert len(raw) <= 512 + 12  # never more than the limit (plus a length header)
        assert reason is None or isinstance(reason, str)
    assert len(framer.buf) == 0


def test_hostile_frames() -> None:
    f = Framer("auto", max_len=100)
    out = f.feed(b"<1>ok\n" + b"999999 " + b"x" * 50)
    assert out[0] == (b"<1>ok", None)
    assert out[1][1] is not None and "frame too large" in out[1][1]
    assert f.feed(b"y" * 100) == [] and f.skip > 0  # the rest of the huge frame is skipped
    assert f.close() == []
    g = Framer("auto", max_len=100)
    assert g.feed(b"12 <1>short") == []
    assert g.close() == [(b"12 <1>short", "truncated frame (connection closed mid-message)")]
    h = Framer("auto", max_len=100)
    assert h.feed(b"\x00\x00\x00\n") == [(b"\x00\x00\x00", "blank or NUL-only frame")]


text = st.text(max_size=400)


@settings(max_examples=500, deadline=None)
@given(text)
def test_header_parser_never_crashes(line: str) -> None:
    header = parse_header(line, time.time())
    if header is not None:
        assert isinstance(header.msg, str)


syslogish = st.builds(
    lambda pri, mon, day, host, app, pid, msg: f"<{pri}>{mon} {day:2d} 07:43:17 {host} "
                                               f"{app}[{pid}]: {msg}",
    st.integers(0, 999), st.sampled_from(["Jan", "Nov", "Dec", "Foo"]), st.integers(0, 40),
    st.text(min_size=1, max_size=20).filter(lambda s: " " not in s and s.strip()),
    st.sampled_from(["sshd", "postfix/smtpd", "kernel", "ospfd", "clamd", "nginx", "x"]),
    st.integers(0, 10**12), st.text(max_size=200))


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(DATASETS), st.one_of(text, syslogish))
def test_every_parser_returns_an_event_or_a_reason(dataset: str, line: str) -> None:
    try:
        ts, ev = parse_event(dataset, line, 1795340000.0)
    except ParseError as exc:
        assert exc.reason
        return
    assert ts is None or isinstance(ts, float)  # None: no time in the line
    assert ev["@timestamp"] == format_ts(1795340000.0 if ts is None else ts)
    assert ev["log"]["original"] == line.rstrip("\r\n")
    assert ev["event"]["dataset"] in DATASETS


nginx_errorish = st.builds(
    lambda date, level, conn, msg, client, ctx: f"{date} [{level}] 7#7: {conn}{msg}{client}{ctx}",
    st.sampled_from(["2026/12/08 01:00:05", "2026/02/30 01:00:05", "0000/01/01 00:00:00",
                     "9999/12/31 23:59:60"]),
    st.sampled_from(["error", "warn", "emerg", "x"]), st.sampled_from(["", "*1 ", "*99999 "]),
    st.text(max_size=80),
    st.sampled_from(["", ", client: 198.18.2.1, server: ", ", client: ::, server: ",
                     ", client: 1.2.3, server: x", ", client: unix:, server: "]),
    st.lists(st.tuples(st.sampled_from(["server", "request", "upstream", "host", "referrer",
                                        "subrequest", "other"]),
                       st.text(max_size=30), st.booleans()), max_size=6).map(
        lambda parts: "".join(f', {k}: "{v}"' if q else f", {k}: {v}" for k, v, q in parts)))


@settings(max_examples=500, deadline=None)
@given(st.one_of(nginx_errorish, nginx_errorish.map(lambda m: f"<187>Dec  8 01:00:05 nginx: {m}")))
def test_nginx_error_lines_are_events_or_reasons(line: str) -> None:
    """nginx's error lines as the syslog route and the file source read them: an event
    whose url fields come from a request line, or a reason, never an exception."""
    for dataset in ("nginx.error", "syslog"):
        try:
            _, ev = parse_event(dataset, line, 1795340000.0)
        except ParseError as exc:
            assert exc.reason
            continue
        if ev["event"]["dataset"] == "nginx.error":
            assert ev["message"] in line
            assert "url" not in ev or ev["url"]["original"] in line
