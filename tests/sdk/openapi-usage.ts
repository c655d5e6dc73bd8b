// A typed client of Switchboard's API, compiled (never run) by tests/openapi_client.rs with
// `tsc --strict` against the types openapi-typescript generates from the served OpenAPI
// document (`./schema`). Each field read here exists only if its operation's schema is in the
// document, so a missing or wrong schema fails the compile.
import createClient from "openapi-fetch";
import type { paths } from "./schema";

const api = createClient<paths>({ baseUrl: "http://127.0.0.1:8080", headers: { Authorization: "Bearer sk_…" } });

export async function tour(): Promise<string[]> {
  const out: string[] = [];

  const balance = await api.GET("/api/balance");
  if (balance.data) {
    const available: number = balance.data.availableMicros;
    const payer: string = balance.data.payerOrgId;
    out.push(`${payer}: ${available} µ$ (wallet ${balance.data.walletMicros})`);
  } else {
    const code: string = balance.error.error.code;
    out.push(`balance refused: ${code}`);
  }

  const agent = {
    stt: { provider: "deepgram", model: "nova-3" },
    llm: { provider: "openai", model: "gpt-4o-mini" },
    tts: { provider: "cartesia", model: "sonic-2", voice: "default" },
    prompt: "You answer questions about opening hours.",
  };
  const created = await api.POST("/api/agents", { body: agent });
  if (created.data) {
    out.push(`created ${created.data.id} on ${created.data.agent.llm.model}`);
  }

  const agents = await api.GET("/api/agents");
  for (const a of agents.data?.agents ?? []) {
    const tts: string = a.agent.tts.provider;
    out.push(`${a.id}: ${tts} ${a.agent.prompt.length} chars of prompt`);
  }

  const access = await api.GET("/api/models/access", { params: { query: { service: "tts", model: "sonic-2" } } });
  if (access.data && !access.data.allowed) {
    out.push(`sonic-2: ${access.data.reason}`);
  }

  const call = await api.GET("/api/calls/{call_id}", { params: { path: { call_id: "CA0001" } } });
  for (const line of call.data?.usage ?? []) {
    const payer: "managed" | "byok" | "wallet" = line.billed_to;
    out.push(`${line.line}: ${line.amount_micros} µ$ (${payer})`);
  }

  const token = await api.POST("/api/client-tokens", { body: { agentId: "agent_1", ttlSeconds: 30 } });
  if (token.data) {
    const expiresAt: number = token.data.expiresAt;
    out.push(`token until ${expiresAt}`);
  }
  return out;
}
