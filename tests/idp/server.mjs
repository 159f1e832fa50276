// A real OpenID provider (npm `oidc-provider`, pinned in package.json) for the end-to-end
// tests, on 127.0.0.1. Usage: node server.mjs CONFIG.json
//
// CONFIG.json (written by the test):
//   { "clients": [ { "client_id", "auth": "client_secret_basic" | "private_key_jwt",
//                    "client_secret"?, "alg"?, "public_key_file"?, "kid"? } ],
//     "exchange_audiences": ["..."],
//     "login_clients": ["..."]?, "access_token_ttl"?: seconds }
// A `login_clients` id is a public native client (no secret, PKCE) for a person's
// sign-in: authorization code with a loopback redirect (http://127.0.0.1/callback, any
// port, RFC 8252) and the device flow, with refresh tokens (rotated, as oidc-provider
// does for public clients). With login clients, devInteractions gives the login and
// consent forms a test submits over HTTP.
// A private_key_jwt client's jwks is the public key in `public_key_file` (PEM, made by
// the test with openssl), with `kid` if given.
//
// Prints `listening <port>` on stdout once it accepts connections on a port the OS chose,
// and exits when stdin closes (the test ends).
//
// Test-only pieces, around a server that is otherwise oidc-provider as it ships:
// - an RFC 8693 token-exchange grant, registered with oidc-provider's own
//   `registerGrantType`: the subject token must be an access token this server issued
//   (client credentials), and `audience`, when sent, one of `exchange_audiences`;
//   The grant also accepts a vendor-specific `tenant_hint` (oidc-provider passes a grant
//   only the parameters it registered);
// - GET /test/assertions: the client assertions the server accepted (header, claims and
//   the JWT itself), recorded by oidc-provider's `assertJwtClientAuthClaimsAndHeader` hook;
// - GET /test/exchanges: the parameters of each token-exchange request.
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Provider, { errors } from 'oidc-provider';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

function client(c) {
  const out = {
    client_id: c.client_id,
    grant_types: ['client_credentials', TOKEN_EXCHANGE],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: c.auth,
  };
  if (c.client_secret) out.client_secret = c.client_secret;
  if (c.public_key_file) {
    const jwk = createPublicKey(readFileSync(c.public_key_file)).export({ format: 'jwk' });
    out.jwks = { keys: [{ ...jwk, use: 'sig', ...(c.kid ? { kid: c.kid } : {}) }] };
    out.token_endpoint_auth_signing_alg = c.alg;
  }
  return out;
}

function loginClient(id) {
  return {
    client_id: id,
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  };
}

const loginClients = config.login_clients ?? [];
const assertions = [];
const exchanges = [];
const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [...config.clients.map(client), ...loginClients.map(loginClient)],
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: loginClients.length > 0 },
      deviceFlow: { enabled: loginClients.length > 0 },
      introspection: { enabled: true },
      revocation: { enabled: true },
    },
    ...(config.access_token_ttl ? { ttl: { AccessToken: config.access_token_ttl } } : {}),
    async assertJwtClientAuthClaimsAndHeader(ctx, claims, header) {
      assertions.push({ header, claims, jwt: ctx.oidc.params.client_assertion });
    },
  });

  provider.registerGrantType(
    TOKEN_EXCHANGE,
    async (ctx) => {
      const { params, client: caller } = ctx.oidc;
      exchanges.push(Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)));
      if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
        throw new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
      }
      const subject = await provider.ClientCredentials.find(params.subject_token);
      if (!subject || subject.isExpired) {
        throw new errors.CustomOIDCProviderError(
          'invalid_grant',
          'subject_token is not an active access token issued by this server',
        );
      }
      if (params.audience && !config.exchange_audiences.includes(params.audience)) {
        throw new errors.InvalidTarget(`audience ${params.audience} is not accepted`);
      }
      const token = new provider.ClientCredentials({ client: caller, scope: subject.scope });
      token.extra = { exchanged_from: subject.clientId, aud: params.audience };
      const value = await token.save();
      ctx.body = {
        access_token: value,
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: 'Bearer',
        expires_in: token.expiration,
      };
    },
    ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'tenant_hint'],
  );

  const callback = provider.callback();
  server.on('request', (req, res) => {
    const recorded = { '/test/assertions': assertions, '/test/exchanges': exchanges }[req.url];
    if (req.method === 'GET' && recorded) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(recorded));
      return;
    }
    callback(req, res);
  });
  console.log(`listening ${port}`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
