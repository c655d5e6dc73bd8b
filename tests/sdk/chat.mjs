// Drive Switchboard's OpenAI-compatible endpoint with the official OpenAI Node SDK.
// Env as chat.py; prints one JSON object.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.SB_BASE_URL, apiKey: process.env.SB_API_KEY, maxRetries: 0 });
const headers = process.env.SB_PROVIDER ? { "x-byok-provider": process.env.SB_PROVIDER } : undefined;
const messages = [
  { role: "system", content: "You are a helpful phone agent." },
  { role: "user", content: "What are your opening hours?" },
];
const model = process.env.SB_MODEL;
const out = { sdk: "node" };
try {
  const r = await client.chat.completions.create({ model, messages }, { headers });
  out.text = r.choices[0].message.content;
  out.finish_reason = r.choices[0].finish_reason;
  out.usage = { prompt: r.usage.prompt_tokens, completion: r.usage.completion_tokens };
  const { response } = await client.chat.completions.create({ model, messages }, { headers }).withResponse();
  out.billed_to = response.headers.get("x-switchboard-billed-to");
  const stream = await client.chat.completions.create(
    { model, messages, stream: true, stream_options: { include_usage: true } },
    { headers },
  );
  const pieces = [];
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.choices.length && chunk.choices[0].delta.content) pieces.push(chunk.choices[0].delta.content);
    if (chunk.usage) usage = { prompt: chunk.usage.prompt_tokens, completion: chunk.usage.completion_tokens };
  }
  out.stream_text = pieces.join("");
  out.stream_usage = usage;
} catch (e) {
  if (e instanceof OpenAI.APIError) {
    out.error = { class: e.constructor.name, status: e.status, code: e.code ?? null };
  } else {
    throw e;
  }
}
console.log(JSON.stringify(out));
