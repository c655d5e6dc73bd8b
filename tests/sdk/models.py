"""List the models an org can use through Switchboard's OpenAI-compatible `/models`, with the
official OpenAI Python SDK. Env: SB_BASE_URL, SB_API_KEY. Prints one JSON object."""
import json
import os

import openai

client = openai.OpenAI(base_url=os.environ["SB_BASE_URL"], api_key=os.environ["SB_API_KEY"], max_retries=0)
out = {"sdk": "python"}
try:
    out["models"] = [{"id": m.id, "owned_by": m.owned_by} for m in client.models.list()]
except openai.APIStatusError as e:
    out["error"] = {"class": type(e).__name__, "status": e.status_code}
print(json.dumps(out))
