"""A "literal" model behind a local OpenAI-compatible HTTP server: it does exactly what each prompt says.

It knows nothing of the tests. It reads the conversation and the JSON Schema it is sent and
answers as a diligent, unimaginative model would: it calls the tools the system prompt tells it
to use, reads their results back out of the conversation, and fills in the schema it is asked
for from what the prompts state (the requirement, the discovered objects, the sample values, the
design, the feedback of a rejected round). It serves /v1/chat/completions and /v1/models on
127.0.0.1, with tool calling, response_format json_schema and json_object, so the OpenAI adapter
probes it and talks to it like any local server.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "literal-1"
WORD = re.compile(r"[A-Za-z0-9]+")
# Words a requirement shares with every sentence (the architect prompt calls them function words).
FUNCTION_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "in",
        "of",
        "with",
        "and",
        "or",
        "for",
        "to",
        "by",
        "on",
        "at",
        "from",
        "all",
        "every",
        "their",
        "its",
    ]
)


def _words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text or "")]


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _section(text: str, title: str) -> list[str]:
    """The '- ...' lines under `title:` in a prompt."""
    lines, inside = [], False
    for line in (text or "").splitlines():
        if line.strip() == f"{title}:":
            inside = True
            continue
        if inside:
            if not line.startswith("- "):
                break
            lines.append(line[2:])
    return lines


def _objects(text: str) -> dict[str, list[str]]:
    """'table main.customers(customer_id INTEGER, ...)' lines: object name -> its columns."""
    found: dict[str, list[str]] = {}
    for line in _section(text, "Discovered objects") + _section(text, "Described so far") + _section(text, "Schema"):
        match = re.match(r"(?:table|view) ([\w.]+)\(", line)
        if match:
            found[match.group(1)] = _column_names(line[match.end() :])
    return found


def _column_names(listing: str) -> list[str]:
    """'id INTEGER, total NUMERIC(12, 2)) FK: ...' -> ['id', 'total']: the names up to the closing parenthesis."""
    names, depth, current = [], 0, ""
    for char in listing:
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                break
            depth -= 1
        elif char == "," and depth == 0:
            names.append(current)
            current = ""
            continue
        current += char
    names.append(current)
    return [n.split()[0] for n in names if n.strip()]


def _samples(text: str) -> dict[tuple[str, str], list[str]]:
    values: dict[tuple[str, str], list[str]] = {}
    for line in _section(text, "Sample values"):
        match = re.match(r"(\w+)\.(\w+): (.*)", line)
        if match:
            values[(match.group(1), match.group(2))] = re.findall(r"'([^']*)'", match.group(3))
    return values


def _after(text: str, label: str) -> str:
    match = re.search(rf"{re.escape(label)}: *(.*)$", text or "", re.M)
    return match.group(1).strip() if match else ""


def _json_after(text: str, label: str) -> dict:
    start = (text or "").find(f"{label}:\n")
    if start < 0:
        return {}
    try:
        value, _ = json.JSONDecoder().raw_decode(text, start + len(label) + 2)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class Conversation:
    """One request, read the way the model reads it."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.messages = body.get("messages") or []
        self.system = " ".join(m.get("content") or "" for m in self.messages if m["role"] == "system")
        users = [m.get("content") or "" for m in self.messages if m["role"] == "user"]
        self.task = users[0] if users else ""
        self.last = users[-1] if users else ""
        self.text = "\n".join(m.get("content") or "" for m in self.messages if m["role"] in ("system", "user"))
        self.tools = [t["function"]["name"] for t in body.get("tools") or []]
        self.requirement = _after(self.task, "Requirement")

    def calls_made(self) -> list[dict]:
        made = []
        for message in self.messages:
            for call in message.get("tool_calls") or []:
                made.append({"name": call["function"]["name"], "arguments": json.loads(call["function"]["arguments"])})
        return made

    def results(self) -> list[dict]:
        out = []
        for message in self.messages:
            if message["role"] == "tool":
                try:
                    out.append(json.loads(message["content"]))
                except ValueError:
                    out.append({"text": message["content"]})
        return out

    def schema(self) -> dict | None:
        response_format = self.body.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            return response_format["json_schema"]["schema"]
        if response_format.get("type") == "json_object":
            return response_format.get("schema") or {}
        forced = self.body.get("tool_choice")
        if isinstance(forced, dict):
            name = forced["function"]["name"]
            return next(t["function"]["parameters"] for t in self.body["tools"] if t["function"]["name"] == name)
        return None

    def feedback(self) -> list[str]:
        return _section(self.task, "The previous design was not accepted, for these reasons; fix every one")


class LiteralModel:
    """What the model answers: (text, tool calls, structured) for one request."""

    def answer(self, conversation: Conversation) -> tuple[str, list[dict], dict | None]:
        schema = conversation.schema()
        if 'Reply with the JSON object {"ok": true}' in conversation.text:
            return "", [], {"ok": True}
        if schema is not None:
            return "", [], self.structured(conversation, schema.get("properties") or {})
        if conversation.tools:
            calls = self.act(conversation)
            return ("" if calls else "I have done what the task asks."), calls, None
        return "Done.", [], None

    # --- acting: the tools the system prompt says to use ------------------------------------------
    def act(self, conversation: Conversation, tools: list[str] | None = None) -> list[dict]:
        made = conversation.calls_made()
        tools = conversation.tools if tools is None else tools
        if "exploration agent" in conversation.system:
            if not made:
                return [{"name": "search_objects", "arguments": {"query": conversation.requirement}}]
            described = {c["arguments"].get("object") for c in made if c["name"] == "describe_object"}
            wanted = _singular_words(conversation.requirement)
            listed = [o for r in conversation.results() for o in (r.get("objects") or [])]
            names = [o["name"] if isinstance(o, dict) else str(o) for o in listed]
            found = [name for name in dict.fromkeys(names) if _singular(name.rpartition(".")[2].lower()) in wanted]
            return [
                {"name": "describe_object", "arguments": {"object": name}} for name in found if name not in described
            ]
        if "implementer" in conversation.system and "try_sql" in tools and not made:
            design = _json_after(conversation.task, "Design")
            if design.get("sql") and ":" not in design["sql"]:
                return [{"name": "try_sql", "arguments": {"sql": design["sql"]}}]
        return []

    # --- answering in the schema it was sent -----------------------------------------------------
    def structured(self, conversation: Conversation, properties: dict) -> dict:
        if "goal_achieved" in properties:
            # Achieved when nothing the task asks for is left to do.
            tools = [t["function"]["name"] for t in conversation.body.get("tools") or []]
            left = self.act(conversation, tools=tools or ["search_objects", "describe_object", "try_sql"])
            steps = [f"{c['name']} {json.dumps(c['arguments'])}" for c in left]
            return {
                "goal_achieved": not left,
                "progress": f"{len(conversation.results())} results read",
                "next_steps": steps,
            }
        if "relevant_objects" in properties:
            return self.exploration(conversation)
        if "interpretation" in properties:
            return self.design(conversation)
        if "approved" in properties:
            found = _after(conversation.system, "The platform's own checks found")
            issues = [] if found in ("", "nothing") else [found]
            return {"approved": not issues, "issues": issues, "notes": "reviewed against the rules given"}
        if "cases" in properties:
            return self.tests(conversation)
        if "markdown" in properties:
            meaning = _after(conversation.task, "What it means") or "the requested rows"
            return {"summary": meaning[:200], "markdown": f"# What this endpoint answers\n\n{meaning}\n"}
        if "sql" in properties:
            design = _json_after(conversation.task, "Design")
            return {"sql": design.get("sql", ""), "notes": "the design's query, as it stands"}
        return {}

    def exploration(self, conversation: Conversation) -> dict:
        objects = _objects(conversation.last)
        wanted = _singular_words(conversation.requirement)
        relevant = [name for name in objects if _singular(name.rpartition(".")[2].lower()) in wanted] or list(objects)
        return {
            "relevant_objects": [{"object": name, "reason": "named by the requirement"} for name in relevant],
            "summary": f"described {', '.join(objects)}",
        }

    def design(self, conversation: Conversation) -> dict:
        """An endpoint over the object the requirement names, filtered on the values it names."""
        requirement = conversation.requirement
        objects = _objects(conversation.task)
        samples = _samples(conversation.task)
        wanted = _singular_words(requirement)
        name = next((n for n in objects if _singular(n.rpartition(".")[2].lower()) in wanted), None)
        if name is None:
            return {"questions": []}
        table = name.rpartition(".")[2]
        entity_word = next(w for w in WORD.findall(requirement) if _singular(w.lower()) == _singular(table.lower()))
        # "fix every one": a column a rejected round complained about is left out.
        rejected = " ".join(conversation.feedback())
        complained = set(_words(rejected)) | set(re.findall(r"\w+", rejected))
        columns = [c for c in objects[name] if c not in complained]
        filters, where = [], []
        for word in WORD.findall(requirement):
            for column in objects[name]:
                if word in samples.get((table, column), []):
                    filters.append(
                        {"column": {"entity": "t", "column": column}, "op": "eq", "value": word, "phrase": word}
                    )
                    where.append(f"t.{column} = '{word}'")
        sql = f"SELECT {', '.join(f't.{c} AS {c}' for c in columns)} FROM {table} AS t"
        if where:
            sql += " WHERE " + " AND ".join(where)
        words = [w for w in _words(requirement) if w not in FUNCTION_WORDS]
        return {
            "path": "-".join(words)[:64].strip("-"),
            "description": requirement,
            "interpretation": {
                "entities": [{"alias": "t", "object": name, "phrase": entity_word}],
                "select": [{"column": {"entity": "t", "column": c}} for c in columns],
                "filters": filters,
            },
            "sql": sql,
            "rationale": [f"{table} is what the requirement names", *rejected.split(";")[:1]],
        }

    def tests(self, conversation: Conversation) -> dict:
        endpoint = _json_after(conversation.task, "Endpoint")
        sql = endpoint.get("sql", "")
        columns = re.findall(r" AS (\w+)", sql.split(" FROM ")[0])
        cases = [{"name": "the defaults answer", "params": {}, "expect": {"status": 200, "columns": columns}}]
        for bind in dict.fromkeys(re.findall(r":([a-z]\w*)", sql)):
            cases.append({"name": f"a bad {bind}", "params": {bind: "not-a-valid-value"}, "expect": {"status": 400}})
        return {"cases": cases}


def _singular_words(text: str) -> set[str]:
    return {_singular(w) for w in _words(text)}


class LiteralServer:
    """The literal model on a local port; `requests` holds every request body it answered."""

    def __init__(self) -> None:
        self.model = LiteralModel()
        self.requests: list[dict] = []
        self.tokens = {"prompt": 0, "completion": 0}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                return None

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/v1/models"):
                    self._json(
                        200, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "nectar"}]}
                    )
                else:
                    self._json(404, {"error": {"message": "Not Found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.endswith("/chat/completions"):
                    self._json(404, {"error": {"message": "Not Found"}})
                    return
                self._json(200, server.complete(body))

            def _json(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    def __enter__(self) -> LiteralServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    def complete(self, body: dict) -> dict:
        self.requests.append(body)
        conversation = Conversation(body)
        text, calls, structured = self.model.answer(conversation)
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        finish = "stop"
        forced = isinstance(body.get("tool_choice"), dict)
        if structured is not None and forced:
            name = body["tool_choice"]["function"]["name"]
            calls = [{"name": name, "arguments": structured}]
        elif structured is not None:
            message["content"] = json.dumps(structured)
        if calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{len(self.requests)}_{i}",
                    "type": "function",
                    "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
                }
                for i, c in enumerate(calls)
            ]
            finish = "tool_calls"
        prompt = len(json.dumps(body.get("messages"))) // 4 + 1
        completion = len(json.dumps(message)) // 4 + 1
        self.tokens["prompt"] += prompt
        self.tokens["completion"] += completion
        return {
            "id": f"chatcmpl-literal-{len(self.requests)}",
            "object": "chat.completion",
            "created": 1767225600,
            "model": MODEL,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }
