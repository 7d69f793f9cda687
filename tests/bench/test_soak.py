"""How the soak judges growth after warm-up (bench/load/soak.py)."""

from __future__ import annotations

import os
import socket
from typing import Any

from bench.load.soak import descriptors, markdown, summarise, tcp_connections


def _soak(rss: list[float], fds: list[int]) -> dict[str, Any]:
    samples = [{"t": 30.0 * k, "turns": 100 * k, "processes": {
        "web-1": {"pid": 7, "rss_mb": r, "cpu_seconds": 1.0, "fds": f, "sockets": 3, "tcp": 2}}}
        for k, (r, f) in enumerate(zip(rss, fds, strict=True))]
    level = {"customers": 10, "seconds": 30.0 * len(rss), "lost": [], "duplicated": [],
             "during": {"every_seconds": 30.0, "samples": samples}}
    result = {"systems": {"cluster": {"levels": [level]}}}
    summarise(result, warm_up=60.0)
    return result


def test_growth_is_the_median_of_the_last_five_samples_against_the_first_five_after_warm_up(
        ) -> None:
    # warm-up (two samples) grows a lot and does not count; one spike is not growth
    rss = [50.0, 80.0, 100.0, 100.0, 300.0, 100.0, 100.0, 101.0, 104.0, 104.0, 104.0, 104.0]
    fds = [10, 30, 40, 40, 40, 41, 40, 42, 44, 45, 45, 45]
    result = _soak(rss, fds)
    measures = result["systems"]["cluster"]["levels"][0]["soak"]["processes"]["web-1"]["measures"]
    assert measures["rss_mb"] == {"after_warm_up": 100.0, "end": 104.0, "growth": 4.0,
                                  "growth_percent": 4.0, "met": True, "trend": 4.5}
    assert (measures["fds"]["growth"], measures["fds"]["met"]) == (5, True)
    assert "| zero lost messages (and none duplicated) | 0 lost, 0 duplicated | met |" in (
        markdown(result))


def test_five_percent_more_memory_or_six_more_descriptors_miss_the_target() -> None:
    result = _soak([100.0] * 7 + [105.0] * 5, [40] * 7 + [46] * 5)
    measures = result["systems"]["cluster"]["levels"][0]["soak"]["processes"]["web-1"]["measures"]
    assert not measures["rss_mb"]["met"]
    assert not measures["fds"]["met"]
    assert measures["sockets"]["met"]
    assert markdown(result).count("**missed**") == 2


def test_the_trend_tells_a_pool_that_breathes_from_a_leak_that_grows() -> None:
    # idle keep-alive sockets: high in the last window, low in the first, no slope between
    breathing = [10, 30] + [40, 40, 41, 40, 40] + [46, 40, 46, 40, 40, 46, 40] + [46] * 5
    leaking = [10, 30] + list(range(40, 57))
    for fds, trend, met in ((breathing, 0.0, False), (leaking, 16.0, False)):
        result = _soak([100.0] * len(fds), fds)
        soak = result["systems"]["cluster"]["levels"][0]["soak"]
        assert (soak["processes"]["web-1"]["measures"]["fds"]["trend"],
                soak["processes"]["web-1"]["measures"]["fds"]["met"]) == (trend, met)
        assert f"| web-1 | +0 | {trend:+g} | +0 | +0 |" in markdown(result)


def test_a_connection_to_a_port_the_process_listens_on_counts_as_coming_in() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        before = descriptors([os.getpid()], tcp_connections(), {})
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            with accepted:
                during = descriptors([os.getpid()], tcp_connections(),
                                     {"postgresql": port})
        assert client.fileno() == -1
    # both ends are this process's: the accepted one comes in, the client one goes to `port`
    assert during["tcp"] - before["tcp"] == 2
    assert during["tcp_incoming"] - before["tcp_incoming"] == 1
    assert during["tcp_postgresql"] == 1
    assert during["tcp_out_by_port"][str(port)] == 1
