"""Rasa with bot/schemas.py installed validates exactly as before, checking each schema once.

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

from bot import schemas
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
print("ok")
'''


def test_validation_is_unchanged_and_each_schema_checked_once() -> None:
    done = subprocess.run([str(ROOT / ".venv/rasa/bin/python"), "-c", CHECK], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
