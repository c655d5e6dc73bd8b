// Tool calling through Switchboard's OpenAI-compatible endpoint with the official OpenAI Node
// SDK: a call, its result sent back, the same streamed, and a forced call. Env as chat.py.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.SB_BASE_URL, apiKey: process.env.SB_API_KEY, maxRetries: 0 });
const model = process.env.SB_MODEL;
const tools = [{
  type: "function",
  function: {
    name: "order_status",
    description: "Look up an order by its number.",
    parameters: { type: "object", properties: { order_id: { type: "string" } }, required: ["order_id"] },
  },
}];
const messages = [
  { role: "system", content: "You are a helpful phone agent." },
  { role: "user", content: "What is the order status of order 4217?" },
];
const out = { sdk: "node" };
try {
  const r = await client.chat.completions.create({ model, messages, tools });
  const msg = r.choices[0].message;
  const called = msg.tool_calls ?? [];
  out.finish_reason = r.choices[0].finish_reason;
  out.calls = called.map((c) => ({ id: c.id, name: c.function.name, arguments: JSON.parse(c.function.arguments) }));
  const followup = [
    ...messages,
    { role: "assistant", content: null, tool_calls: called },
    ...called.map((c) => ({ role: "tool", tool_call_id: c.id, content: JSON.stringify({ status: "shipped" }) })),
  ];
  out.answer = (await client.chat.completions.create({ model, messages: followup, tools })).choices[0].message.content;

  const calls = new Map();
  let finish = null;
  const stream = await client.chat.completions.create({ model, messages, tools, stream: true });
  for await (const chunk of stream) {
    if (!chunk.choices.length) continue;
    for (const d of chunk.choices[0].delta.tool_calls ?? []) {
      const c = calls.get(d.index) ?? { name: "", arguments: "" };
      c.name += d.function?.name ?? "";
      c.arguments += d.function?.arguments ?? "";
      calls.set(d.index, c);
    }
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  out.stream_calls = [...calls.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => ({ name: c.name, arguments: JSON.parse(c.arguments) }));
  out.stream_finish = finish;

  const forced = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "hello" }],
    tools,
    tool_choice: { type: "function", function: { name: "order_status" } },
  });
  out.forced = (forced.choices[0].message.tool_calls ?? []).map((c) => c.function.name);
} catch (e) {
  if (e instanceof OpenAI.APIError) {
    out.error = { class: e.constructor.name, status: e.status, code: e.code ?? null, message: e.message };
  } else {
    throw e;
  }
}
console.log(JSON.stringify(out));
