// A real OAuth 2.0 authorization server for stowpair's interop tests and demo:
// the certified oidc-provider, configured (not reimplemented) to issue short-lived JWT
// access tokens with the client_credentials grant.
//
//   node server.js CONFIG.json
//
// CONFIG: {"port": 9000, "realm": "stowpair", "ttl": 5, "audience": "...",
//          "scope": "stow", "clients": [{"client_id", "client_secret", ...}]}
//
// The provider is mounted at /realms/<realm> with Keycloak's endpoint paths, so both
// forms of a stowpair [keycloak-clients.ID] table reach it: url + realm (Keycloak) and
// token-url. The issuer is http://127.0.0.1:<port>/realms/<realm>; its discovery
// document, token endpoint and JWKS are under that path. Every token request is
// printed as one JSON line (never the token), so tests can count them.
import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";

import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const prefix = `/realms/${config.realm || "stowpair"}`;
const issuer = `http://127.0.0.1:${config.port}${prefix}`;
const ttl = Number(config.ttl || 5);
const scope = config.scope || "stow";

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: "jwk" }), kid: "k1", use: "sig", alg: "RS256" };

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({
    grant_types: ["client_credentials"],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: "client_secret_basic",
    scope,
    ...c,
  })),
  jwks: { keys: [signingKey] },
  scopes: [scope],
  routes: {
    token: "/protocol/openid-connect/token",
    jwks: "/protocol/openid-connect/certs",
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Requests without a resource parameter get a token for the STOW-RS server.
      defaultResource: () => config.audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope,
        audience: config.audience,
        accessTokenTTL: ttl,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
});

function log(fields) {
  process.stdout.write(`${JSON.stringify({ time: Date.now() / 1000, ...fields })}\n`);
}

provider.on("grant.success", (ctx) => {
  log({ event: "token.issued", client_id: ctx.oidc.client?.clientId, ttl });
});
provider.on("grant.error", (ctx, error) => {
  log({ event: "token.refused", client_id: ctx.oidc.client?.clientId, error: error.error });
});

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (!req.url.startsWith(prefix)) {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end(`not found; the issuer is ${issuer}\n`);
    return;
  }
  // What a router mounting the provider at the issuer's path does: oidc-provider reads
  // the mount path from originalUrl.
  req.originalUrl = req.url;
  req.url = req.url.slice(prefix.length) || "/";
  callback(req, res);
});
server.listen(config.port, "127.0.0.1", () => {
  log({ event: "listening", issuer, ttl });
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
