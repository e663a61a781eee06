// openai.mjs: the official OpenAI Node client against a running hearthd.
// Usage: node openai.mjs BASE_URL MODEL   (e.g. http://127.0.0.1:8321/v1 tiny)
// Exits 0 only if a non-streaming and a streaming chat completion both work
// and agree (greedy decoding), an unknown model raises a 404 APIError,
// structured outputs parse with the SDK's helper, and a required tool call
// comes back whole and streamed, and the conversation goes on after it.
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

// logprobs, as the SDK types them
const lpr = await client.chat.completions.create({
  model, messages, max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 2,
});
const lpc = lpr.choices[0].logprobs?.content ?? [];
check(lpc.length === lpr.usage.completion_tokens, `one logprobs entry a token (${lpc.length})`);
check(lpc.map((e) => e.token).join("") === lpr.choices[0].message.content, "the tokens make the content");
check(lpc.every((e) => e.logprob <= 0 && e.top_logprobs.length === 2 && e.top_logprobs[0].token === e.token),
  "greedy: each token the most likely");

// structured outputs through the SDK's own parse helper (it refuses a cut answer)
const cat = {
  type: "object", additionalProperties: false, required: ["name", "lives", "color"],
  properties: {
    name: { type: "string", maxLength: 12 }, lives: { type: "integer" },
    color: { type: "string", enum: ["black", "white", "orange"] },
  },
};
const parsed = await client.beta.chat.completions.parse({
  model, messages: [{ role: "user", content: "Describe a cat as JSON." }], max_tokens: 300, temperature: 0,
  response_format: { type: "json_schema", json_schema: { name: "cat", schema: cat, strict: true } },
});
const pc = parsed.choices[0].message.parsed;
check(pc && typeof pc.name === "string" && pc.name.length <= 12, "parsed name");
check(pc && Number.isInteger(pc.lives), "parsed integer");
check(pc && ["black", "white", "orange"].includes(pc.color), "parsed enum");

// a tool the model must call, whole and streamed, then the conversation goes on
const tools = [{
  type: "function",
  function: {
    name: "get_weather", description: "The weather in a city",
    parameters: { type: "object", required: ["city"], additionalProperties: false,
      properties: { city: { type: "string", maxLength: 16 }, unit: { type: "string", enum: ["c", "f"] } } },
  },
}];
const ask = [{ role: "user", content: "What is the weather in Oslo?" }];
const tc = await client.chat.completions.create({
  model, messages: ask, tools, tool_choice: "required", parallel_tool_calls: false, max_tokens: 200, temperature: 0,
});
const call = tc.choices[0].message.tool_calls?.[0];
check(tc.choices[0].finish_reason === "tool_calls", `finish_reason tool_calls (${tc.choices[0].finish_reason})`);
check(call && call.type === "function" && call.function.name === "get_weather", "a get_weather call");
let callArgs = null;
try { callArgs = JSON.parse(call.function.arguments); } catch { /* checked below */ }
check(callArgs && typeof callArgs.city === "string", "arguments parse, with the required city");
const ts = await client.chat.completions.create({
  model, messages: ask, tools, tool_choice: "required", parallel_tool_calls: false, max_tokens: 200, temperature: 0, stream: true,
});
const acc = [];
let tfinish = null;
for await (const chunk of ts) {
  const c = chunk.choices[0];
  for (const d of c?.delta?.tool_calls ?? []) {
    acc[d.index] ??= { id: "", name: "", arguments: "" };
    if (d.id) acc[d.index].id = d.id;
    if (d.function?.name) acc[d.index].name += d.function.name;
    if (d.function?.arguments) acc[d.index].arguments += d.function.arguments;
  }
  if (c?.finish_reason) tfinish = c.finish_reason;
}
check(tfinish === "tool_calls" && acc.length === tc.choices[0].message.tool_calls.length, "streamed calls");
check(acc[0] && acc[0].name === call.function.name && acc[0].arguments === call.function.arguments,
  "streamed call equals the whole one");
const next = await client.chat.completions.create({
  model, tools, max_tokens: 8, temperature: 0,
  messages: [...ask, tc.choices[0].message, { role: "tool", tool_call_id: call.id, content: "-3 C, snow" }],
});
check(typeof next.choices[0].message.content === "string", "the conversation goes on after the result");

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
