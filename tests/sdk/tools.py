"""Tool calling through Switchboard's OpenAI-compatible endpoint with the official OpenAI Python
SDK: a call, its result sent back, the same streamed, and a forced call.

Env as chat.py. Prints one JSON object.
"""
import json
import os
import sys

import openai

client = openai.OpenAI(base_url=os.environ["SB_BASE_URL"], api_key=os.environ["SB_API_KEY"], max_retries=0)
model = os.environ["SB_MODEL"]
tools = [{"type": "function", "function": {
    "name": "order_status", "description": "Look up an order by its number.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
}}]
messages = [
    {"role": "system", "content": "You are a helpful phone agent."},
    {"role": "user", "content": "What is the order status of order 4217?"},
]
out = {"sdk": "python"}
try:
    r = client.chat.completions.create(model=model, messages=messages, tools=tools)
    msg = r.choices[0].message
    out["finish_reason"] = r.choices[0].finish_reason
    out["calls"] = [{"id": c.id, "name": c.function.name, "arguments": json.loads(c.function.arguments)} for c in msg.tool_calls or []]
    followup = messages + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
            for c in msg.tool_calls or []]},
    ] + [{"role": "tool", "tool_call_id": c.id, "content": json.dumps({"status": "shipped"})} for c in msg.tool_calls or []]
    out["answer"] = client.chat.completions.create(model=model, messages=followup, tools=tools).choices[0].message.content

    calls, finish = {}, None
    for chunk in client.chat.completions.create(model=model, messages=messages, tools=tools, stream=True):
        if not chunk.choices:
            continue
        for d in chunk.choices[0].delta.tool_calls or []:
            c = calls.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
            c["id"] = c["id"] or d.id
            if d.function and d.function.name:
                c["name"] += d.function.name
            if d.function and d.function.arguments:
                c["arguments"] += d.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    out["stream_calls"] = [{"name": c["name"], "arguments": json.loads(c["arguments"])} for _, c in sorted(calls.items())]
    out["stream_finish"] = finish

    forced = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hello"}], tools=tools,
        tool_choice={"type": "function", "function": {"name": "order_status"}},
    )
    out["forced"] = [c.function.name for c in forced.choices[0].message.tool_calls or []]
except openai.APIStatusError as e:
    body = e.body if isinstance(e.body, dict) else {}
    out["error"] = {"class": type(e).__name__, "status": e.status_code, "code": body.get("code"), "message": body.get("message")}
print(json.dumps(out))
sys.stdout.flush()
