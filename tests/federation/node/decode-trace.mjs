// Decode an ftv1 trace (base64 Apollo Trace protobuf, as a router reads it) with Apollo's own
// protobuf definitions. stdin: the base64 string; stdout: the Trace as JSON.
import pkg from "@apollo/usage-reporting-protobuf";

const { Trace } = pkg;
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const bytes = Buffer.from(Buffer.concat(chunks).toString("utf8").trim(), "base64");
const trace = Trace.decode(bytes);
process.stdout.write(JSON.stringify(Trace.toObject(trace, { longs: Number, defaults: false })));
