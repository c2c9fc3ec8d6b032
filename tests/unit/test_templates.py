"""The log template digest groups by message shape, counts, and keeps time bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rootloop.analysis.headers import HeaderModel
from rootloop.analysis.templates import TemplateDigester, digest_lines, strip_header

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def test_lines_differing_only_by_ids_and_numbers_share_a_template() -> None:
    d = TemplateDigester()
    ids = {
        d.add(
            "user 1234 logged in from 10.0.0.1:5432 request 6f1c2a3e-9b7d-4c1e-8f00-1234567890ab"
        ),
        d.add(
            "user 98 logged in from 192.168.1.20:80 request 0a1b2c3d-0000-4c1e-8f00-ffffffffffff"
        ),
        d.add("user 7 logged in from 172.16.0.9:443 request 11111111-2222-3333-4444-555555555555"),
    }
    assert len(ids) == 1
    digest = d.digest()
    assert digest.distinct == 1
    assert digest.templates[0].count == 3
    assert "<IP>" in digest.templates[0].template
    assert "<UUID>" in digest.templates[0].template


def test_different_messages_stay_apart() -> None:
    d = TemplateDigester()
    a = d.add("connection to database established in 12 ms")
    b = d.add("connection to database refused after 3 retries")
    c = d.add("payment 0xdeadbeef declined by gateway")
    assert len({a, b, c}) == 3
    assert d.digest().distinct == 3


def test_hex_paths_and_mixed_ids_are_masked() -> None:
    d = TemplateDigester()
    a = d.add("read /var/lib/app/data/file_1.db for job_20261127_0001 at 0x7ffde1a2")
    b = d.add("read /tmp/x/y.db for job_20261128_9999 at 0x10")
    assert a == b
    t = d.digest().templates[0].template
    assert "<PATH>" in t and "<HEX>" in t and "<ID>" in t


def test_counts_first_and_last_seen_and_order() -> None:
    lines = [
        (T0 + timedelta(seconds=i), f"GET /items/{i} returned 200 in {i} ms") for i in range(5)
    ]
    lines += [(T0 + timedelta(seconds=100), "cache miss for key k1 rebuilding index")]
    lines += [(T0 + timedelta(seconds=2), "GET /items/77 returned 200 in 3 ms")]
    digest = digest_lines(lines)
    assert digest.total_lines == 7
    top, other = digest.templates
    assert top.count == 6
    assert top.first_seen == T0
    assert top.last_seen == T0 + timedelta(seconds=4)
    assert other.count == 1
    assert other.first_seen == other.last_seen == T0 + timedelta(seconds=100)
    assert other.example == "cache miss for key k1 rebuilding index"


def test_limit_keeps_most_frequent_but_distinct_counts_all() -> None:
    lines = [f"event number {i} of kind alpha" for i in range(4)]
    lines += ["something entirely different happened", "yet another unrelated message here now"]
    digest = digest_lines(lines, limit=1)
    assert len(digest.templates) == 1
    assert digest.templates[0].count == 4
    assert digest.distinct == 3


def test_headers_are_stripped_so_levels_and_timestamps_do_not_split() -> None:
    d = TemplateDigester()
    a = d.add("2026-11-27 10:00:01,123 INFO [main] com.acme.Orders: order 17 shipped")
    b = d.add("2026-11-27T10:00:02.5Z WARN com.acme.Orders: order 18 shipped")
    c = d.add("Nov 27 10:00:03 host1 orders[4242]: order 19 shipped")
    assert a == b == c


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 done",
            "PacketResponder 1 done",
        ),
        ("[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok", "workerEnv.init() ok"),
        (
            "20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579",
            "onStandStepChanged 3579",
        ),
        (
            "2015-07-29 17:41:44,747 - INFO  [Q[id=1]/0:21:F@7] - Notification time out: 3200",
            "Notification time out: 3200",
        ),
        ("no header here, just a message", "no header here, just a message"),
    ],
)
def test_strip_header(line: str, message: str) -> None:
    assert strip_header(line) == message


def test_bad_configuration_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="sim_th"):
        TemplateDigester(sim_th=0)


def test_addresses_paths_and_times_are_masked_by_shape() -> None:
    d = TemplateDigester(header=HeaderModel())  # bare messages: no header to learn
    a = d.add(
        r"peer fe80::1ff:fe23:4567:890a%eth0 via db-1.example.org:5432 wrote C:\data\x1.log "
        "at 2031-02-03T04:05:06.789Z"
    )
    b = d.add(
        r"peer 2001:db8:0:0:1:0:0:1 via cache.internal.net:6379 wrote D:\tmp\y\z.log "
        "at 2031-02-04T00:00:00+02:00"
    )
    assert a == b
    t = d.digest().templates[0].template
    assert t == "peer <IP> via <HOST> wrote <PATH> at <TIME>"


def test_the_masks_leave_words_and_plain_colons_alone() -> None:
    d = TemplateDigester(header=HeaderModel())
    d.add("std::vector resize failed: Foo :: bar")
    assert d.digest().templates[0].template == "std::vector resize failed: Foo :: bar"
