#!/usr/bin/env python3
"""Write a realistic Codex CLI (`codex exec --json`) or Gemini CLI (`--output-format stream-json`)
log of about SIZE_MB MiB for bench/validate_log.sh; Claude Code's is bench/gen_stream_log.py's.

usage: gen_agent_log.py codex|gemini OUT SIZE_MB

Codex: the stderr line it always prints, `thread.started`, `turn.started`, then items — reasoning,
commands with their output (`aggregated_output`), file changes, messages — started and completed,
and `turn.completed` with its usage. Gemini: its stderr notices, `init`, the prompt, then tool calls
and results, assistant messages in chunks (`delta`), and the final `result` with its stats. The
formats are those of Codex 0.171.0 and Gemini 0.61.0 (tests/fixtures/agents/). The output is full
of words that are auth and limit markers elsewhere (401, 429, unauthorized, quota) so the judge
also walks the lines a careless reader would misjudge. A block of varied events is built once and
written repeatedly, so generating 1 GiB takes seconds.
"""
import json
import random
import sys


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def main():
    kind, out, size_mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
    target = size_mb << 20
    rnd = random.Random(19)
    words = (
        "the handler returns 401 unauthorized when the token is missing; retry on 429 with backoff; "
        "quota exceeded pages link to billing; the usage limit resets at midnight; the cache key "
        "uses the session id; overloaded upstreams answer 503; fix the flaky test first; "
    ).split()

    def text(n):
        return " ".join(rnd.choice(words) for _ in range(n))

    def output(lines):
        return "\n".join(
            f"src/api/handler_{rnd.randrange(100)}.rs:{rnd.randrange(1, 900)}: {text(8)}"
            for _ in range(lines)
        )

    item_id = [0]

    def codex_block():
        lines = []

        def item(kind, started, completed):
            item_id[0] += 1
            ident = f"item_{item_id[0]}"
            if started is not None:
                lines.append(dumps({"type": "item.started", "item": {"id": ident, "type": kind, **started}}))
            lines.append(dumps({"type": "item.completed", "item": {"id": ident, "type": kind, **completed}}))

        for _ in range(40):
            item("reasoning", None, {"text": f"**Checking the handlers**\n\n{text(30)}"})
            command = f"/bin/bash -lc 'rg -n 401 src | head -{rnd.randrange(5, 60)}'"
            item(
                "command_execution",
                {"command": command, "aggregated_output": "", "exit_code": None, "status": "in_progress"},
                {
                    "command": command,
                    "aggregated_output": output(rnd.randrange(5, 60)),
                    "exit_code": rnd.choice([0, 0, 0, 1]),
                    "status": "completed",
                },
            )
            if rnd.random() < 0.3:
                change = {
                    "changes": [{"path": f"/srv/web/src/api/handler_{rnd.randrange(100)}.rs", "kind": "update"}],
                    "status": "completed",
                }
                item("file_change", None, change)
            item("agent_message", None, {"text": text(rnd.randrange(10, 80))})
        return "\n".join(lines) + "\n"

    tool_id = [0]

    def gemini_block():
        lines = []
        stamp = "2026-11-29T09:39:55.523Z"
        for _ in range(40):
            tool_id[0] += 1
            ident = f"run_shell_command__run_shell_command_1795945195565_{tool_id[0]}"
            lines.append(dumps({
                "type": "tool_use", "timestamp": stamp, "tool_name": "run_shell_command",
                "tool_id": ident,
                "parameters": {"command": f"rg -n 429 src | head -{rnd.randrange(5, 60)}", "description": "search"},
            }))
            lines.append(dumps({
                "type": "tool_result", "timestamp": stamp, "tool_id": ident,
                "status": rnd.choice(["success", "success", "success", "error"]),
                "output": output(rnd.randrange(5, 60)),
            }))
            for _ in range(rnd.randrange(1, 6)):
                lines.append(dumps({
                    "type": "message", "timestamp": stamp, "role": "assistant",
                    "content": text(rnd.randrange(5, 30)) + " ", "delta": True,
                }))
        return "\n".join(lines) + "\n"

    with open(out, "w", encoding="utf-8") as f:
        if kind == "codex":
            f.write("Reading additional input from stdin...\n")
            f.write(dumps({"type": "thread.started", "thread_id": "01a226a8-60e1-7161-b53f-78cfd54bb287"}) + "\n")
            f.write(dumps({"type": "turn.started"}) + "\n")
            block = codex_block()
        elif kind == "gemini":
            f.write("YOLO mode is enabled. All tool calls will be automatically approved.\n")
            f.write(dumps({
                "type": "init", "timestamp": "2026-11-29T09:39:55.522Z",
                "session_id": "678d680c-9307-4a9a-8a0d-342ce4cb32bb", "model": "gemini-2.5-pro",
            }) + "\n")
            f.write(dumps({
                "type": "message", "timestamp": "2026-11-29T09:39:55.523Z", "role": "user",
                "content": "Fix the 401 handler.",
            }) + "\n")
            block = gemini_block()
        else:
            sys.exit(f"gen_agent_log.py: unknown kind {kind!r} (codex or gemini)")
        written = f.tell()
        while written < target:
            f.write(block)
            written += len(block.encode("utf-8"))
        if kind == "codex":
            f.write(dumps({"type": "item.completed", "item": {"id": "item_final", "type": "agent_message", "text": "Done: the 401 handler is fixed."}}) + "\n")
            f.write(dumps({"type": "turn.completed", "usage": {
                "input_tokens": 182_000, "cached_input_tokens": 150_000, "cache_write_input_tokens": 0,
                "output_tokens": 9_400, "reasoning_output_tokens": 3_100,
            }}) + "\n")
        else:
            f.write(dumps({
                "type": "message", "timestamp": "2026-11-29T09:40:55.523Z", "role": "assistant",
                "content": "Done: the 401 handler is fixed.", "delta": True,
            }) + "\n")
            f.write(dumps({
                "type": "result", "timestamp": "2026-11-29T09:40:56.027Z", "status": "success",
                "stats": {
                    "total_tokens": 191_400, "input_tokens": 182_000, "output_tokens": 9_400,
                    "cached": 150_000, "input": 32_000, "duration_ms": 61_000, "tool_calls": 4_000,
                    "models": {"gemini-2.5-pro": {"total_tokens": 191_400, "input_tokens": 182_000,
                                                  "output_tokens": 9_400, "cached": 150_000}},
                },
            }) + "\n")


if __name__ == "__main__":
    main()
