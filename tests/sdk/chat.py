"""Drive Switchboard's OpenAI-compatible endpoint with the official OpenAI Python SDK.

Env: SB_BASE_URL (…/api/v1), SB_API_KEY (the org's key), SB_MODEL, SB_PROVIDER (optional,
sent as x-byok-provider). Prints one JSON object: what the SDK parsed, or the typed error.
"""
import json
import os
import sys

import openai

client = openai.OpenAI(base_url=os.environ["SB_BASE_URL"], api_key=os.environ["SB_API_KEY"], max_retries=0)
headers = {"x-byok-provider": os.environ["SB_PROVIDER"]} if os.environ.get("SB_PROVIDER") else None
messages = [
    {"role": "system", "content": "You are a helpful phone agent."},
    {"role": "user", "content": "What are your opening hours?"},
]
out = {"sdk": "python", "version": openai.__version__}
try:
    r = client.chat.completions.create(model=os.environ["SB_MODEL"], messages=messages, extra_headers=headers)
    out["text"] = r.choices[0].message.content
    out["finish_reason"] = r.choices[0].finish_reason
    out["usage"] = {"prompt": r.usage.prompt_tokens, "completion": r.usage.completion_tokens}
    raw = client.chat.completions.with_raw_response.create(model=os.environ["SB_MODEL"], messages=messages, extra_headers=headers)
    out["billed_to"] = raw.headers.get("x-switchboard-billed-to")
    stream = client.chat.completions.create(
        model=os.environ["SB_MODEL"], messages=messages, stream=True,
        stream_options={"include_usage": True}, extra_headers=headers,
    )
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = {"prompt": chunk.usage.prompt_tokens, "completion": chunk.usage.completion_tokens}
    out["stream_text"] = "".join(pieces)
    out["stream_usage"] = usage
except openai.APIStatusError as e:
    body = e.body if isinstance(e.body, dict) else {}
    out["error"] = {"class": type(e).__name__, "status": e.status_code, "code": body.get("code")}
print(json.dumps(out))
sys.stdout.flush()
