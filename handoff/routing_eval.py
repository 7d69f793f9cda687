"""Routing evaluator: what the assistant does with each message as the first of a conversation.

    ./assistant evaluate-routing messages.csv [-o routing.jsonl]

Reads a CSV with a `text` column (and optionally `expected`) and writes one JSON line per
row: the intent and its confidence, the action the dialogue policy picks next, and the
handler that action is (flow, knowledge, handoff, response, out_of_scope, fallback); then a
summary line with accuracy per expected label. It asks the running Rasa server (the same
model, pipeline thresholds and policies customers get) through its HTTP API, so nothing is
re-implemented here. With no server reachable (SUPPORT_RASA_URL/SUPPORT_RASA_TOKEN), it
starts one privately from the current trained model (SUPPORT_MODEL) and stops it after.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import uuid
from collections import Counter, defaultdict
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, AsyncIterator

import aiohttp

from actions.flows import FLOW_ACTIONS
from handoff.assistant import AssistantClient
from handoff.config import PROJECT_ROOT

KNOWLEDGE_ACTION = "action_answer_from_knowledge_base"
HANDOFF_ACTION = "action_handoff_to_human"
FALLBACK_ACTIONS = {"utter_default", "action_default_fallback", "action_two_stage_fallback"}


class EvaluationInputError(ValueError):
    """The CSV cannot be evaluated; the message says why."""


@dataclass(frozen=True)
class Row:
    text: str
    expected: str | None


def handler_for(action: str, intent: str) -> tuple[str, str]:
    """(handler, kind) for the action the policy chose after a message with `intent`."""
    if action == KNOWLEDGE_ACTION:
        return f"knowledge:{intent}", "knowledge"
    if action == HANDOFF_ACTION:
        return "handoff", "handoff"
    if action in FLOW_ACTIONS:
        return f"flow:{FLOW_ACTIONS[action].flow}", "flow"
    if action.endswith("_form"):  # a Rasa form collecting the details a flow needs
        return f"flow:{action.removesuffix('_form')}", "flow"
    if action in FALLBACK_ACTIONS:
        return "fallback", "fallback"
    if action == "utter_out_of_scope":
        return "out_of_scope", "out_of_scope"
    if action.startswith("utter_"):
        return f"response:{action}", "response"
    return f"action:{action}", "action"


def read_rows(stream: IO[str]) -> list[Row]:
    reader = csv.DictReader(stream)
    if not reader.fieldnames or "text" not in reader.fieldnames:
        raise EvaluationInputError(
            f"the CSV needs a 'text' column; found {reader.fieldnames or 'no header'}"
        )
    rows = []
    for line, record in enumerate(reader, start=2):
        text = (record.get("text") or "").strip()
        if not text:
            raise EvaluationInputError(f"line {line}: 'text' is empty")
        rows.append(Row(text, (record.get("expected") or "").strip() or None))
    return rows


async def evaluate_row(client: AssistantClient, row: Row) -> dict[str, Any]:
    """Routes one message through a fresh conversation without running any action."""
    sender = f"routing-eval-{uuid.uuid4().hex}"
    tracker = await client.api(
        "POST", f"/conversations/{sender}/messages", json={"text": row.text, "sender": "user"}
    )
    parse = tracker.get("latest_message") or {}
    intent = parse.get("intent") or {}
    ranking = [i for i in parse.get("intent_ranking") or [] if i.get("name") != "nlu_fallback"]
    prediction = await client.api("POST", f"/conversations/{sender}/predict")
    best = max(prediction.get("scores") or [{"action": "", "score": 0.0}], key=lambda s: s["score"])
    handler, kind = handler_for(best["action"], intent.get("name") or "")
    result: dict[str, Any] = {
        "text": row.text,
        "intent": intent.get("name"),
        "confidence": round(float(intent.get("confidence") or 0.0), 4),
        # The best real intent, also when the fallback classifier abstained.
        "top_intent": ranking[0]["name"] if ranking else None,
        "top_confidence": round(float(ranking[0]["confidence"]), 4) if ranking else None,
        "second_confidence": round(float(ranking[1]["confidence"]), 4) if len(ranking) > 1 else None,
        "action": best["action"],
        "action_confidence": round(float(best["score"]), 4),
        "policy": prediction.get("policy"),
        "handler": handler,
        "handler_kind": kind,
    }
    if row.expected is not None:
        result["expected"] = row.expected
        result["correct"] = row.expected in (result["intent"], handler, kind)
    return result


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    by_label: dict[str, list[bool]] = defaultdict(list)
    for result in results:
        if "expected" in result:
            by_label[result["expected"]].append(result["correct"])
    judged = [ok for oks in by_label.values() for ok in oks]
    confusions = Counter(
        f"{r['expected']} -> {r['intent']}" for r in results if r.get("correct") is False
    )
    return {
        "rows": len(results),
        "handler_kinds": dict(Counter(r["handler_kind"] for r in results)),
        "fallback_rate": round(
            sum(r["handler_kind"] == "fallback" for r in results) / max(len(results), 1), 4
        ),
        "accuracy": round(sum(judged) / len(judged), 4) if judged else None,
        "per_label": {
            label: {"n": len(oks), "correct": sum(oks), "accuracy": round(sum(oks) / len(oks), 4)}
            for label, oks in sorted(by_label.items())
        },
        "top_confusions": dict(confusions.most_common(15)),
    }


async def evaluate(
    client: AssistantClient, rows: list[Row], concurrency: int = 4
) -> list[dict[str, Any]]:
    gate = asyncio.Semaphore(concurrency)

    async def one(row: Row) -> dict[str, Any]:
        async with gate:
            return await evaluate_row(client, row)

    return list(await asyncio.gather(*(one(row) for row in rows)))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def rasa_server(http: aiohttp.ClientSession) -> AsyncIterator[tuple[str, str]]:
    """The running Rasa server if one answers; otherwise a private one on the current model."""
    url, token = os.environ.get("SUPPORT_RASA_URL"), os.environ.get("SUPPORT_RASA_TOKEN")
    if url and token:
        try:
            async with http.get(f"{url}/status", params={"token": token}) as response:
                if response.status == 200:
                    yield url, token
                    return
        except aiohttp.ClientError:
            pass
    model = os.environ.get("SUPPORT_MODEL")
    if not model or not Path(model).is_file():
        raise EvaluationInputError(
            "no Rasa server answers and SUPPORT_MODEL names no model; "
            "run through ./assistant evaluate-routing"
        )
    port, token = _free_port(), secrets.token_urlsafe(24)
    # Routing never runs an action, so the action endpoint only has to be well-formed.
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "SUPPORT_RASA_TOKEN": token,
           "SUPPORT_ACTION_ENDPOINT": "http://127.0.0.1:9/webhook"}
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(
        [str(PROJECT_ROOT / ".venv/rasa/bin/rasa"), "run", "-m", model, "--enable-api",
         "--auth-token", token, "-i", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(
                    f"the Rasa server exited with code {process.returncode}:\n{log.read()[-2000:]}"
                )
            try:
                async with http.get(f"{url}/status", params={"token": token}) as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
        else:
            raise RuntimeError("the Rasa server did not start within 300 s")
        yield url, token
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


async def run(rows: list[Row], out: IO[str]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, rasa_server(http) as (url, token):
        client = AssistantClient(http, url, token, timeout=60)
        results = await evaluate(client, rows)
    for result in results:
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
    summary = summarise(results)
    out.write(json.dumps({"summary": summary}, ensure_ascii=False) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./assistant evaluate-routing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path, help="CSV with a 'text' column and optional 'expected'")
    parser.add_argument("-o", "--output", type=Path, help="JSON Lines file (default: stdout)")
    args = parser.parse_args(argv)
    try:
        with args.csv.open(encoding="utf-8", newline="") as stream:
            rows = read_rows(stream)
    except (OSError, UnicodeDecodeError, EvaluationInputError, csv.Error) as exc:
        print(f"cannot read {args.csv}: {exc}", file=sys.stderr)
        return 2
    out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
    try:
        summary = asyncio.run(run(rows, out))
    except EvaluationInputError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        if args.output:
            out.close()
    accuracy = summary["accuracy"]
    print(
        f"{summary['rows']} messages; fallback rate {summary['fallback_rate']:.1%}"
        + (f"; accuracy {accuracy:.1%}" if accuracy is not None else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
