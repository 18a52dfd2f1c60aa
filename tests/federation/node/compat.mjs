// Apollo's federation subgraph compatibility suite without Docker or rover.
// usage: node compat.mjs <products url>
// Starts the suite's reference users and inventory subgraphs (127.0.0.1), Apollo Gateway in place
// of the router on 127.0.0.1:4000 with its health check on 127.0.0.1:8088 (the suite hard-codes
// both), runs the suite's own jest tests (runJest) and prints JSON {results: [{assertion,
// required, passed}]}. Every process it starts is stopped before it exits.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const suite = path.dirname(require.resolve("@apollo/federation-subgraph-compatibility-tests/package.json"));
const { runJest } = require(path.join(suite, "dist/testRunner.js"));
const productsUrl = process.argv[2];
const children = [];

function start(args, env, ready) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, cwd: here });
    children.push(child);
    let out = "";
    const onData = (data) => {
      out += data;
      if (out.includes(ready)) resolve(child);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => reject(new Error(`${args.join(" ")} exited (${code}): ${out.slice(-2000)}`)));
    setTimeout(() => reject(new Error(`${args.join(" ")} did not start: ${out.slice(-2000)}`)), 60000);
  });
}

function stopAll() {
  for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
}

let code = 0;
try {
  const preload = ["--require", path.join(here, "localhost.cjs")];
  await start([...preload, path.join(suite, "dist/subgraphs/users/index.js")], { USERS_PORT: "4002" }, "4002");
  await start([...preload, path.join(suite, "dist/subgraphs/inventory/index.js")], { INVENTORY_PORT: "4003" }, "4003");
  await start(
    [
      path.join(here, "gateway.mjs"),
      "--port", "4000",
      "--health-port", "8088",
      `products=${productsUrl}`,
      "users=http://127.0.0.1:4002/",
      "inventory=http://127.0.0.1:4003/",
    ],
    {},
    "ready",
  );
  const { assertions } = await runJest(productsUrl);
  const { TESTS } = require(path.join(suite, "dist/testRunner.js"));
  const groups = new Map();
  for (const a of assertions) {
    const name = a.ancestorTitles.length === 0 ? a.fullName : a.ancestorTitles[0];
    const group = groups.get(name) ?? { assertion: name, passed: true, failures: [] };
    if (a.status !== "passed") {
      group.passed = false;
      group.failures.push(...(a.failureMessages ?? []).map((m) => m.slice(0, 1500)));
    }
    groups.set(name, group);
  }
  const required = new Map((TESTS ?? []).map((t) => [t.assertion, t.required]));
  const results = [...groups.values()].map((g) => ({ ...g, required: required.get(g.assertion) ?? null }));
  process.stdout.write(JSON.stringify({ results }) + "\n");
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error?.stack ?? error) }) + "\n");
  code = 1;
} finally {
  stopAll();
}
process.exit(code);
