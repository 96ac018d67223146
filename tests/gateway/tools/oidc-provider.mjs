// A real OpenID Connect provider for the gateway's sign-in test: panva's `oidc-provider`
// (npm, pinned in oidc-provider.version), configured as kechuang expects an identity
// provider to be: authorization code with PKCE, RS256, and JWT access tokens for the
// audience `kechuang` carrying the person's roles (and an enterprise user's enterprise).
//
// Environment: OIDC_PROVIDER_MODULE (the package's entry file), HOST, PORT, REDIRECT_URI,
// POST_LOGOUT_URI, PEOPLE (JSON: login -> {name?, roles, enterprise_id?, institution_id?}:
// the name goes into the ID token, as Keycloak's does, the rest into access tokens),
// ACCESS_TOKEN_TTL (seconds, default 600). Its development interactions take any login and
// password: the test signs in as one of PEOPLE. Refresh tokens are issued with every sign-in
// (Keycloak's default; this provider's needs offline_access otherwise) and rotated on use.
import { generateKeyPairSync } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const { default: Provider } = await import(pathToFileURL(process.env.OIDC_PROVIDER_MODULE).href);

const port = Number(process.env.PORT);
// The name browsers and the gateway reach it by (it listens on loopback either way).
const issuer = `http://${process.env.HOST || '127.0.0.1'}:${port}`;
const people = JSON.parse(process.env.PEOPLE);
const accessTokenTTL = Number(process.env.ACCESS_TOKEN_TTL || 600);

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const key = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'kechuang-gateway',
    client_secret: 'test-only-secret',
    redirect_uris: [process.env.REDIRECT_URI],
    post_logout_redirect_uris: [process.env.POST_LOGOUT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  }],
  jwks: { keys: [key] },
  pkce: { required: () => true },
  cookies: { keys: ['test-only-cookie-key'] },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, name: people[id]?.name ?? id, preferred_username: id }),
  }),
  // The profile claims in the ID token itself (not only at userinfo), as Keycloak does.
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'] },
  conformIdTokenClaims: false,
  issueRefreshToken: async () => true,
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    // Access tokens as JWTs for one resource server, kechuang, whichever the client asks.
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:kechuang',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'profile',
        audience: 'kechuang',
        accessTokenTTL,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  extraTokenClaims: async (ctx, token) => {
    const person = people[token.accountId];
    if (!person) return {};
    const { name, ...claims } = person;
    return claims;
  },
});

provider.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));
