"""Work Rasa 3.6 repeats on every message that need not be repeated, done once instead.

Found with py-spy on the Rasa server under the load run (bench/results/load-notes.md); each
change keeps Rasa's behaviour exactly (tests/bot/test_speedups.py compares with the original).
Installed by bot/channel.py, which Rasa imports at start-up (credentials.yml); runs inside
the Rasa server's environment.

1. JSON schemas checked once. Rasa validates every action-server response (RemoteAction) and every event list appended
over its HTTP API (handoff/repeat_answers.py appends one per repeated answer) with
`jsonschema.validate(instance, schema)`. That function first validates the *schema* against
its metaschema and builds a validator, on every call: 20-40 ms of CPU on these two cores
(measured, bench/results/load-notes.md), more than the rest of a turn. The schemas are
constants, so here each is checked and compiled on first use and kept; the instance is
validated exactly as before, raising the same error.

2. Event types looked up in a table. Reading a tracker turns each stored event back into an
object, and `Event.resolve_by_type` walked every subclass of Event (with an abstractness
check each) per event: 8 % of Rasa's time. The classes found are kept by type name; a name
not found yet still takes the original walk.
"""

from __future__ import annotations

import functools
from typing import Any

import jsonschema
from jsonschema import exceptions, validators

_ORIGINAL = jsonschema.validate
# id(schema) -> (schema, its validator); the schema is kept so its id cannot be reused.
_COMPILED: dict[int, tuple[Any, Any]] = {}
MAX_SCHEMAS = 64  # schemas built per call (none in Rasa once installed) are not kept


def validate(instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
    """jsonschema.validate, with the schema's check and compilation done once per schema."""
    if cls is not None or args or kwargs:
        _ORIGINAL(instance, schema, cls, *args, **kwargs)
        return
    entry = _COMPILED.get(id(schema))
    if entry is None or entry[0] is not schema:
        checker = validators.validator_for(schema)
        checker.check_schema(schema)
        entry = (schema, checker(schema))
        if len(_COMPILED) < MAX_SCHEMAS:
            _COMPILED[id(schema)] = entry
    error = exceptions.best_match(entry[1].iter_errors(instance))
    if error is not None:
        raise error


def install() -> None:
    """Installs both; idempotent."""
    jsonschema.validate = validate  # rasa.server and rasa.core.actions look it up per call
    try:
        from rasa.core.actions.action import RemoteAction
        from rasa.shared.core.events import Event
    except ImportError:  # not inside Rasa
        return
    if not getattr(Event.resolve_by_type, "_support_cached", False):
        Event.resolve_by_type = staticmethod(_cached_resolve(Event.resolve_by_type))  # type: ignore[method-assign]
    spec = RemoteAction.action_response_format_spec
    if not isinstance(spec, functools._lru_cache_wrapper):
        # a new dict per call would be compiled per call: one schema object instead
        RemoteAction.action_response_format_spec = staticmethod(  # type: ignore[method-assign]
            functools.lru_cache(maxsize=1)(spec))


def _cached_resolve(original: Any) -> Any:
    found: dict[str, Any] = {}

    def resolve_by_type(type_name: str, default: Any = None) -> Any:
        cls = found.get(type_name)
        if cls is not None:
            return cls
        cls = original(type_name, None) if default is None else original(type_name, default)
        if cls is not None and cls is not default and getattr(cls, "type_name", None) == type_name:
            found[type_name] = cls
        return cls

    resolve_by_type._support_cached = True  # type: ignore[attr-defined]
    return resolve_by_type
