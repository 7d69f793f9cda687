"""HTTP edges shared by every surface: reading JSON bodies and turning errors into 4xx JSON."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web
from sqlalchemy.exc import DBAPIError

from handoff.conversations.errors import ConversationError

logger = logging.getLogger(__name__)

# Large enough for any message a person types (limits are enforced per field), small
# enough that a runaway client cannot make the service buffer megabytes.
MAX_BODY_BYTES = 64 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The storage is (briefly) unavailable: a 503 with Retry-After, so platforms and widgets send
# again, not a 500. asyncpg raises some of these unwrapped while a new connection is made:
# "not yet accepting connections" during a restart's recovery, "terminating connection due
# to administrator command" while it stops (the cluster fault run saw both as 500s).
STORAGE_DOWN: tuple[type[BaseException], ...] = (
    DBAPIError, OSError, asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.PostgresConnectionError)


class BadRequest(ConversationError):
    status = 400


class Unauthorized(ConversationError):
    status = 401


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or BadRequest saying what is wrong with it."""
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("the request body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON ({exc.msg})") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not header[7:].strip():
        raise Unauthorized("send the conversation token as 'Authorization: Bearer <token>'")
    return header[7:].strip()


def error_body(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain errors become their 4xx; HTTP errors get a JSON body; anything else a bare 500."""
    try:
        return await handler(request)
    except ConversationError as exc:
        return error_body(exc.status, str(exc))
    except web.HTTPRequestEntityTooLarge:
        return error_body(413, f"the request is larger than {MAX_BODY_BYTES} bytes")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_body(exc.status, exc.reason)
    except STORAGE_DOWN as exc:  # the database is restarting or out of reach
        logger.warning("storage unavailable on %s %s: %r", request.method, request.path, exc)
        response = error_body(503, "the service cannot reach its storage right now; send the "
                                   "same request again (a message with the same "
                                   "client_message_id is stored once)")
        response.headers["Retry-After"] = "2"
        return response
    except Exception:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_body(500, "internal error; the team has been notified")
