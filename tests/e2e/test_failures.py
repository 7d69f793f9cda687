"""Processes die; the customer is told and the conversation goes to a person, never dropped."""

from __future__ import annotations

import time

import urllib.error
import urllib.request

from tests.e2e.conftest import RunningSystem
from tests.e2e.http import call
from tests.e2e.test_conversation import Customer, reply_texts


def test_action_server_down_hands_off(fragile_system: RunningSystem) -> None:
    customer = Customer(fragile_system)
    assert customer.say("hi")["status"] == "bot"  # greeting needs no action server
    fragile_system.kill("action-server")
    result = customer.say("how do I reset my password?")
    assert result["status"] == "waiting"
    assert "having trouble" in reply_texts(result)[0]
    assert customer.conversation()["handoff_reason"] == "assistant_no_reply"
    assert "how do I reset my password?" in [m["text"] for m in customer.transcript()]


def test_rasa_down_hands_off_and_supervisor_reports_it(fragile_system: RunningSystem) -> None:
    customer = Customer(fragile_system)
    fragile_system.kill("rasa")
    result = customer.say("where is my order 10023?")
    assert result["status"] == "waiting"
    assert "connecting you to a person" in reply_texts(result)[0]
    deadline = time.monotonic() + 30
    while not any("rasa stopped" in line for line in fragile_system.output):
        assert time.monotonic() < deadline, "".join(fragile_system.output)
        time.sleep(0.2)
    # The web service itself is still up.
    assert call("GET", f"{fragile_system.web_url}/health").status == 200


def test_ctrl_c_stops_everything(fragile_system: RunningSystem) -> None:
    pid = fragile_system.pid("web")
    assert fragile_system.stop() == 0
    try:
        urllib.request.urlopen(f"{fragile_system.web_url}/health", timeout=5)
        raise AssertionError("web service still answering after Ctrl-C")
    except urllib.error.URLError:
        pass
    assert not (fragile_system.run_dir / "web.pid").exists()
    assert any("stopped" in line for line in fragile_system.output)
    assert pid > 0
