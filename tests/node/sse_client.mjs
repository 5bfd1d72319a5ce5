// The TypeScript SDK's SSEClientTransport (what n8n's MCP Client Tool uses) against our legacy
// HTTP+SSE endpoint. Prints one JSON object with what it saw; the pytest test checks it.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { CreateMessageRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const [url, token] = process.argv.slice(2);
const headers = token ? { "X-API-Key": token } : {};
const transport = new SSEClientTransport(new URL(url), {
  requestInit: { headers },
  eventSourceInit: {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers || {}), ...headers } }),
  },
});
const client = new Client({ name: "ts-sse-test", version: "1.0.0" }, { capabilities: { sampling: {} } });
client.setRequestHandler(CreateMessageRequestSchema, async (request) => ({
  role: "assistant",
  content: { type: "text", text: `ts-sampled<${request.params.messages[0].content.text}>` },
  model: "ts-model",
}));

const out = {};
await client.connect(transport);
out.serverName = client.getServerVersion()?.name;
out.tools = (await client.listTools()).tools.map((t) => t.name);
out.echo = (await client.callTool({ name: "echo", arguments: { text: "from typescript" } })).content[0].text;
const progressTimes = [];
const slow = await client.callTool(
  { name: "slow_echo", arguments: { text: "slow", seconds: 0.5 } },
  undefined,
  { onprogress: () => progressTimes.push(Date.now()) },
);
out.slowDone = Date.now();
out.slow = slow.content[0].text;
out.progressTimes = progressTimes;
out.sampling = (await client.callTool({ name: "summarize", arguments: { text: "ts story" } })).content[0].text;
await client.close();
console.log(JSON.stringify(out));
