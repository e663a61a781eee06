// openai.mjs: the official OpenAI Node client against a running hearthd.
// Usage: node openai.mjs BASE_URL MODEL   (e.g. http://127.0.0.1:8321/v1 tiny)
// Exits 0 only if a non-streaming and a streaming chat completion both work
// and agree (greedy decoding), and an unknown model raises a 404 APIError.
import OpenAI from "openai";

const [baseURL, model, embedModel] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "not-needed", maxRetries: 0 });
const messages = [{ role: "user", content: "Say something about the sea." }];
let failures = 0;
const check = (cond, what) => {
  if (!cond) { failures++; console.error(`  node: FAILED: ${what}`); }
};

const whole = await client.chat.completions.create({
  model, messages, max_tokens: 24, temperature: 0,
});
check(whole.object === "chat.completion", "object is chat.completion");
check(whole.choices[0].message.role === "assistant", "assistant role");
check(typeof whole.choices[0].message.content === "string", "content is a string");
check(["stop", "length"].includes(whole.choices[0].finish_reason), "finish_reason");
check(whole.usage.total_tokens === whole.usage.prompt_tokens + whole.usage.completion_tokens, "usage adds up");

const stream = await client.chat.completions.create({
  model, messages, max_tokens: 24, temperature: 0, stream: true,
  stream_options: { include_usage: true },
});
let text = "", finish = null, usage = null, chunks = 0;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  const c = chunk.choices[0];
  if (!c) continue;
  if (c.delta?.content) text += c.delta.content;
  if (c.finish_reason) finish = c.finish_reason;
}
check(chunks >= 3, "several chunks");
check(text === whole.choices[0].message.content, "stream text equals non-stream text");
check(finish === whole.choices[0].finish_reason, "same finish reason");
check(usage && usage.completion_tokens === whole.usage.completion_tokens, "usage chunk");

try {
  await client.chat.completions.create({ model: "no-such-model", messages });
  check(false, "unknown model must throw");
} catch (e) {
  check(e instanceof OpenAI.APIError && e.status === 404, `404 APIError (got ${e.status})`);
}

if (embedModel) {
  // the SDK asks for base64 by default and decodes it itself
  const e = await client.embeddings.create({ model: embedModel, input: ["the cat", "a dog"] });
  check(e.object === "list" && e.data.length === 2, "two embeddings");
  check(e.data[0].embedding.length > 0 && e.data[0].embedding.every(Number.isFinite), "finite vector");
  const norm = Math.sqrt(e.data[0].embedding.reduce((s, x) => s + x * x, 0));
  check(Math.abs(norm - 1) < 1e-3, `unit length (${norm})`);
  const f = await client.embeddings.create({ model: embedModel, input: "the cat", encoding_format: "float" });
  const maxd = Math.max(...f.data[0].embedding.map((x, i) => Math.abs(x - e.data[0].embedding[i])));
  check(maxd < 1e-6, `float and base64 agree (${maxd})`);
}

console.error(`  node openai client: ${failures ? "FAILED" : "ok"} (${chunks} chunks, ${text.length} chars)`);
process.exit(failures ? 1 : 0);
