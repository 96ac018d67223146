// A real OpenID Connect provider for the gateway's sign-in test: panva's `oidc-provider`
// (npm, pinned in oidc-provider.version), configured as kechuang expects an identity
// provider to be: authorization code with PKCE, RS256, and JWT access tokens for the
// audience `kechuang` carrying the person's roles (and an enterprise user's enterprise).
//
// Environment: OIDC_PROVIDER_MODULE (the package's entry file), HOST, PORT, REDIRECT_URI,
// POST_LOGOUT_URI, PEOPLE (JSON: login -> {roles, enterprise_id?}). Its development
// interactions take any login and password: the test signs in as one of PEOPLE.
import { generateKeyPairSync } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const { default: Provider } = await import(pathToFileURL(process.env.OIDC_PROVIDER_MODULE).href);

const port = Number(process.env.PORT);
// The name browsers and the gateway reach it by (it listens on loopback either way).
const issuer = `http://${process.env.HOST || '127.0.0.1'}:${port}`;
const people = JSON.parse(process.env.PEOPLE);

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const key = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'kechuang-gateway',
    client_secret: 'test-only-secret',
    redirect_uris: [process.env.REDIRECT_URI],
    post_logout_redirect_uris: [process.env.POST_LOGOUT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  jwks: { keys: [key] },
  pkce: { required: () => true },
  cookies: { keys: ['test-only-cookie-key'] },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, name: id }),
  }),
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
        accessTokenTTL: 600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  extraTokenClaims: async (ctx, token) => {
    const person = people[token.accountId];
    return person ? { ...person } : {};
  },
});

provider.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));
