#!/usr/bin/env python3
"""Write a realistic Claude Code stream-json log of about SIZE_MB MiB for bench/validate_log.sh.

usage: gen_stream_log.py OUT SIZE_MB

One `system/init` line, then turns of assistant text, tool calls (Bash, Read, Edit) and tool results
(source files, test output, logs), with `api_retry` and `rate_limit_event` lines now and then, and
the final `result` followed by an informational line, as 2.1.x prints them. The tool output is full
of words that are auth and limit markers elsewhere (401, 429, unauthorized, "Not logged in") so the
benchmark also walks the lines a careless reader would misjudge. A block of varied turns is built
once and written repeatedly, so generating 1 GiB takes seconds.
"""
import json
import random
import sys


def dumps(obj):
    # Claude Code writes JSON.stringify output: no spaces, UTF-8.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def main():
    out, size_mb = sys.argv[1], int(sys.argv[2])
    target = size_mb << 20
    rnd = random.Random(6)
    session = "6d1f2a7e-51c4-4f0a-9a57-3f0c2b1d8e90"
    words = (
        "the handler returns 401 unauthorized when the token is missing; retry on 429 with backoff; "
        "Not logged in users are redirected to /login; the cache key uses the session id; "
        "rate limiting is per project; overloaded upstreams answer 529; fix the flaky test first; "
    ).split()

    def text(n):
        return " ".join(rnd.choice(words) for _ in range(n))

    def code(lines):
        body = []
        for i in range(lines):
            body.append(
                f"    if resp.status == {rnd.choice([200, 401, 403, 429, 500])}:  # {text(6)}"
                if i % 3 == 0
                else f"        return handle_{rnd.randrange(1000)}(request, {text(3)!r})"
            )
        return "\n".join(body)

    def assistant(content, usage=True):
        msg = {
            "id": f"msg_{rnd.getrandbits(64):016x}",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": content,
            "stop_reason": None,
            "stop_sequence": None,
        }
        if usage:
            msg["usage"] = {
                "input_tokens": rnd.randrange(1, 20),
                "cache_creation_input_tokens": rnd.randrange(0, 5000),
                "cache_read_input_tokens": rnd.randrange(10000, 90000),
                "output_tokens": rnd.randrange(1, 900),
                "service_tier": "standard",
            }
        return dumps({"type": "assistant", "message": msg, "parent_tool_use_id": None,
                      "session_id": session, "uuid": f"{rnd.getrandbits(128):032x}"})

    def tool_result(tool_id, content):
        return dumps({"type": "user", "message": {"role": "user", "content": [
            {"tool_use_id": tool_id, "type": "tool_result", "content": content}]},
            "parent_tool_use_id": None, "session_id": session,
            "uuid": f"{rnd.getrandbits(128):032x}"})

    def turn():
        lines = [assistant([{"type": "text", "text": text(rnd.randrange(10, 120))}])]
        tool_id = f"toolu_{rnd.getrandbits(64):016x}"
        kind = rnd.randrange(4)
        if kind == 0:
            lines.append(assistant([{"type": "tool_use", "id": tool_id, "name": "Read",
                                     "input": {"file_path": "/work/app/src/auth/handler.py"}}]))
            lines.append(tool_result(tool_id, code(rnd.randrange(20, 300))))
        elif kind == 1:
            lines.append(assistant([{"type": "tool_use", "id": tool_id, "name": "Bash",
                                     "input": {"command": "pytest -q tests/test_auth.py",
                                               "description": "Run the auth tests"}}]))
            log = "\n".join(f"E   AssertionError: expected 401 got {rnd.choice([200, 429, 500])} "
                            f"({text(8)})" for _ in range(rnd.randrange(5, 80)))
            lines.append(tool_result(tool_id, log))
        elif kind == 2:
            lines.append(assistant([{"type": "tool_use", "id": tool_id, "name": "Edit",
                                     "input": {"file_path": "/work/app/src/auth/handler.py",
                                               "old_string": code(rnd.randrange(3, 30)),
                                               "new_string": code(rnd.randrange(3, 30))}}]))
            lines.append(tool_result(tool_id, "The file /work/app/src/auth/handler.py has been updated."))
        else:
            lines.append(assistant([{"type": "thinking", "thinking": text(rnd.randrange(50, 400)),
                                     "signature": f"{rnd.getrandbits(512):0128x}"}]))
        if rnd.randrange(50) == 0:
            lines.append(dumps({"type": "system", "subtype": "api_retry", "attempt": 1,
                                "max_retries": 10, "retry_delay_ms": 512, "error_status": 529,
                                "error": "overloaded", "session_id": session}))
        if rnd.randrange(40) == 0:
            lines.append(dumps({"type": "rate_limit_event", "rate_limit_info": {
                "status": "allowed", "resetsAt": 1774447200, "rateLimitType": "five_hour",
                "isUsingOverage": False}, "session_id": session}))
        return lines

    init = dumps({"type": "system", "subtype": "init", "cwd": "/work/app", "session_id": session,
                  "tools": ["Task", "Bash", "Glob", "Grep", "Read", "Edit", "Write", "WebFetch",
                            "TodoWrite", "WebSearch", "BashOutput", "KillShell"],
                  "mcp_servers": [], "model": "claude-sonnet-4-5-20250929",
                  "permissionMode": "bypassPermissions", "slash_commands": ["compact", "context",
                  "cost", "init", "review", "security-review"], "apiKeySource": "none",
                  "claude_code_version": "2.1.197", "output_style": "default", "agents": [],
                  "skills": [], "plugins": [], "uuid": f"{rnd.getrandbits(128):032x}"})
    block = []
    block_size = 0
    while block_size < (8 << 20):
        for line in turn():
            block.append(line)
            block_size += len(line.encode()) + 1
    block = ("\n".join(block) + "\n").encode()
    result = dumps({"type": "result", "subtype": "success", "is_error": False,
                    "duration_ms": 2712345, "duration_api_ms": 2400000, "num_turns": 1187,
                    "result": "Done: the auth handler now returns 401 only for missing tokens.",
                    "session_id": session, "total_cost_usd": 41.2731,
                    "usage": {"input_tokens": 31021, "cache_creation_input_tokens": 2210345,
                              "cache_read_input_tokens": 98123456, "output_tokens": 731234,
                              "server_tool_use": {"web_search_requests": 0}, "service_tier": "standard"},
                    "modelUsage": {"claude-sonnet-4-5-20250929": {
                        "inputTokens": 31021, "outputTokens": 731234,
                        "cacheReadInputTokens": 98123456, "cacheCreationInputTokens": 2210345,
                        "webSearchRequests": 0, "costUSD": 41.2731, "contextWindow": 200000}},
                    "permission_denials": [], "uuid": f"{rnd.getrandbits(128):032x}"})
    tail = dumps({"type": "rate_limit_event", "rate_limit_info": {"status": "allowed_warning",
                  "resetsAt": 1774447200, "rateLimitType": "seven_day", "utilization": 0.81},
                  "session_id": session})
    with open(out, "wb") as f:
        written = f.write((init + "\n").encode())
        while written + len(block) < target:
            written += f.write(block)
        room = target - written - len(result) - len(tail) - 2
        if room > 0:
            f.write(block[: block.rfind(b"\n", 0, room) + 1])
        f.write((result + "\n" + tail + "\n").encode())


if __name__ == "__main__":
    main()
