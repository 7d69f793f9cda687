"""The reports' JSON and CSV API under /console/api/reports, for managers and admins only.

Only GETs: a report changes no stored conversation, message or event (it may first bring
the derived projection up to date). The API is documented in docs/metrics.md.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp import web

from handoff.appkeys import AGENTS, QUEUE, SETTINGS
from handoff.console.auth import current_manager
from handoff.console.pages import CONSOLE_DIR, serve_file
from handoff.conversations.models import utcnow
from handoff.http import BadRequest, Unauthorized
from handoff.reports.metrics import Reports
from handoff.reports.range import ReportRange, parse_range
from handoff.spreadsheet import safe_cell

routes = web.RouteTableDef()


class NoData(BadRequest):
    status = 404


def _table(report: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The rows of one table of the report, by the name the CSV link uses."""
    if name == "summary":
        return [{"metric": key, "value": value} for key, value in report["summary"].items()]
    if name in ("kb_articles", "kb_unanswered"):
        return list(report["knowledge"]["articles" if name == "kb_articles" else "unanswered"])
    return list(report[name])


TABLES = ("summary", "daily", "channels", "languages", "skills", "handoff_reasons", "topics", "csat", "nps",
          "agents", "service_levels", "flows", "kb_articles", "kb_unanswered")


async def _report(request: web.Request) -> tuple[ReportRange, dict[str, Any]]:
    await current_manager(request)
    queue = request.app[QUEUE]
    zone = queue.hours.zone
    r = parse_range(request.query, zone, utcnow().astimezone(zone).date())
    agents = await request.app[AGENTS].all()
    names = {a.id: a.name for a in agents}
    if r.agent_id is not None and r.agent_id not in names:
        raise BadRequest("unknown agent: no agent has this id")
    reports = Reports(queue.sessions, queue.hours, request.app[SETTINGS].service_levels)
    if r.topic is not None and not await reports.known("topic", r.topic):
        raise BadRequest(f"unknown topic {r.topic!r}: no conversation had this intent or article")
    if r.skill is not None and not (any(r.skill in (a.skills or []) for a in agents)
                                    or await reports.known("skill", r.skill)):
        raise BadRequest(f"unknown skill {r.skill!r}: no agent has it and no conversation needed it")
    report = await reports.all(r)
    for row in report["agents"]:
        row["name"] = names.get(row["agent"], "(removed agent)")
    return r, report


@routes.get("/console/api/reports")
async def reports(request: web.Request) -> web.Response:
    """Every table of the dashboard for ?from=&to=&channel=&language=&agent=&topic=&skill=."""
    _, report = await _report(request)
    return web.json_response(report)


@routes.get("/console/api/reports/live")
async def live(request: web.Request) -> web.Response:
    """Right now: customers waiting, agents online, the longest wait in seconds."""
    await current_manager(request)
    queue = request.app[QUEUE]
    waiting = await queue.waiting()
    now = utcnow()
    waits = [(now - c.waiting_since).total_seconds() for c, _ in waiting if c.waiting_since]
    return web.json_response({"waiting": len(waiting),
                              "agents_online": len(queue.presence.online()),
                              "longest_wait_seconds": round(max(waits), 1) if waits else None,
                              "at": now.isoformat()})


@routes.get("/console/api/reports/{table}.csv")
async def report_csv(request: web.Request) -> web.Response:
    """One table as CSV, with the same numbers and filters as the JSON."""
    name = request.match_info["table"]
    if name not in TABLES:
        raise web.HTTPNotFound(reason=f"no report table {name[:40]!r}; tables: {', '.join(TABLES)}")
    r, report = await _report(request)
    rows = _table(report, name)
    if report["no_data"] or not rows:
        raise NoData(f"no data: nothing for {name} from {r.first} to {r.last} in this slice")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({k: safe_cell(v) for k, v in row.items()} for row in rows)
    filename = f"{name}-{r.first}-{r.last}.csv"
    return web.Response(text=out.getvalue(), content_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@routes.get("/console/reports")
async def reports_page(request: web.Request) -> web.StreamResponse:
    """The dashboard page: log in on the console first; agents are refused."""
    try:
        await current_manager(request)
    except Unauthorized:
        raise web.HTTPFound("/console") from None
    return serve_file(CONSOLE_DIR / "reports.html", "text/html; charset=utf-8")
