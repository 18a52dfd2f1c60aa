// Preloaded (node --require) into the suite's reference subgraphs, which call listen({port}) with
// no host and so would bind every interface: bind them to 127.0.0.1 only.
const net = require("node:net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (args[0] && typeof args[0] === "object" && !args[0].path) args[0] = { ...args[0], host: "127.0.0.1" };
  else if (typeof args[0] === "number" && typeof args[1] !== "string") args.splice(1, 0, "127.0.0.1");
  return listen.apply(this, args);
};
