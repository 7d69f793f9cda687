"""Rasa with bot/speedups.py installed behaves exactly as before, doing the work once.

Runs in Rasa's own environment (.venv/rasa), where Rasa and jsonschema live.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECK = r'''
import jsonschema
from jsonschema import validators
from rasa.core.actions.action import RemoteAction
from rasa.server import EVENTS_SCHEMA

original = jsonschema.validate

def outcome(validate, instance, schema):
    try:
        validate(instance, schema)
        return "valid"
    except jsonschema.ValidationError as error:
        return "invalid: " + error.message

good = {"events": [{"event": "slot", "name": "x", "value": 1}],
        "responses": [{"text": "hi", "buttons": [{"title": "a", "payload": "/a"}]}]}
bad = [{"events": "not a list"}, {"events": [{"name": "x"}]}]
events_good = [{"event": "user", "text": "hi"}, {"event": "action", "name": "action_listen"}]
events_bad = [[{"event": "user", "text": 5}], [{"text": "no event"}]]
spec = RemoteAction.action_response_format_spec()
expected = [outcome(original, i, spec) for i in [good, *bad]] + [
    outcome(original, e, EVENTS_SCHEMA) for e in [events_good, *events_bad]]

from bot import speedups as schemas
schemas.install()
schemas.install()  # twice: still one cached schema
checks = []
real_check = validators.Draft202012Validator.check_schema
for cls in {validators.validator_for(spec), validators.validator_for(EVENTS_SCHEMA)}:
    original_check = cls.check_schema
    cls.check_schema = classmethod(lambda c, s, *a, _o=original_check, **k: (checks.append(1), _o(s, *a, **k))[1])
assert RemoteAction.action_response_format_spec() is RemoteAction.action_response_format_spec()
cached = RemoteAction.action_response_format_spec()
got = []
for _ in range(3):
    got = [outcome(jsonschema.validate, i, cached) for i in [good, *bad]] + [
        outcome(jsonschema.validate, e, EVENTS_SCHEMA) for e in [events_good, *events_bad]]
    assert got == expected, (got, expected)
assert len(checks) == 2, checks  # each schema checked once, not per call
assert [x.split(":")[0] for x in expected] == [
    "valid", "invalid", "invalid", "valid", "invalid", "invalid"], expected
try:
    schemas.validate({}, {"type": "no such type"})
except jsonschema.SchemaError:
    pass
else:
    raise AssertionError("a broken schema must be refused")
from rasa.shared.core import events as rasa_events
names = sorted({c.type_name for c in __import__("rasa.shared.utils.common", fromlist=["x"])
                .all_subclasses(rasa_events.Event)})
for name in names * 2:
    assert rasa_events.Event.resolve_by_type(name).type_name == name
assert rasa_events.Event.resolve_by_type("topic") is None  # Rasa's own special case
assert rasa_events.Event.resolve_by_type("nope", rasa_events.UserUttered) is rasa_events.UserUttered
try:
    rasa_events.Event.resolve_by_type("nope")
except ValueError:
    pass
else:
    raise AssertionError("an unknown event name must still be refused")
stored = [{"event": "user", "text": "hi", "parse_data": {"intent": {"name": "greet"}}},
          {"event": "action", "name": "action_listen"}, {"event": "slot", "name": "a", "value": 1}]
assert [type(e).__name__ for e in rasa_events.deserialise_events(stored)] == [
    "UserUttered", "ActionExecuted", "SlotSet"]

print("ok")
'''


def test_rasa_behaves_as_before_doing_the_work_once() -> None:
    done = subprocess.run([str(ROOT / ".venv/rasa/bin/python"), "-c", CHECK], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
