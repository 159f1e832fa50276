"""Drives the real OpenAI Python SDK against `tokenhost proxy` (tests/proxy/sdk.rs).

Usage: check.py BASE_URL API_KEY. Prints one JSON object on stdout: the text of a chat
completion, of a streamed one, and the outcome of a call with a wrong key. The SDK's own
retries are off, so a 401 the proxy let through would show as an error here.
"""

import json
import sys

import openai

base_url, api_key = sys.argv[1], sys.argv[2]
messages = [{"role": "user", "content": "say hi"}]
out = {"sdk": openai.__version__}

client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)
completion = client.chat.completions.create(model="mock-model", messages=messages)
out["chat"] = completion.choices[0].message.content

stream = client.chat.completions.create(model="mock-model", messages=messages, stream=True)
out["stream"] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

for name, key in [("wrong_key", "thpk_" + "0" * 64), ("no_key", "-")]:
    other = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=30)
    try:
        other.chat.completions.create(model="mock-model", messages=messages)
        out[name] = "accepted"
    except openai.AuthenticationError as e:
        out[name] = e.status_code

print(json.dumps(out))
