// List the models an org can use with the official OpenAI Node SDK. Env as models.py.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.SB_BASE_URL, apiKey: process.env.SB_API_KEY, maxRetries: 0 });
const out = { sdk: "node" };
try {
  out.models = [];
  for await (const m of client.models.list()) out.models.push({ id: m.id, owned_by: m.owned_by });
} catch (e) {
  out.error = { class: e.constructor.name, status: e.status };
}
console.log(JSON.stringify(out));
