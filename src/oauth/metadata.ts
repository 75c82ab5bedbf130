/**
 * Discovery documents: RFC 8414 for the embedded authorization server and
 * RFC 9728 for the gateway as a protected resource, so clients can find where
 * to get a token and what it must be for.
 */

/** RFC 8693 token exchange: an agent exchanges a user's token for a session acting for that user. */
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 8693 §3 token type identifiers Warden accepts as subject tokens, and issues. */
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const TOKEN_TYPE_ACCESS = 'urn:ietf:params:oauth:token-type:access_token';

/** Client-assertion algorithms accepted for private_key_jwt (asymmetric only: no HS*, no none). */
export const CLIENT_ASSERTION_ALGS = ['EdDSA', 'Ed25519', 'ES256'];

/**
 * RFC 8414 authorization server metadata for the embedded server: agents'
 * client_credentials with private_key_jwt always; with delegated logins also
 * the authorization code flow (PKCE S256 only), refresh tokens, dynamic client
 * registration and client ID metadata documents.
 */
export function authorizationServerMetadata(config: {
  issuer: string;
  tokenExchange?: boolean;
  delegation?: { registration: boolean; clientMetadataDocuments: boolean };
}): Record<string, unknown> {
  const d = config.delegation;
  return {
    issuer: config.issuer,
    ...(d ? { authorization_endpoint: `${config.issuer}/authorize` } : {}),
    token_endpoint: `${config.issuer}/token`,
    jwks_uri: `${config.issuer}/jwks`,
    ...(d?.registration ? { registration_endpoint: `${config.issuer}/register` } : {}),
    grant_types_supported: [
      'client_credentials',
      ...(d ? ['authorization_code', 'refresh_token'] : []),
      ...(config.tokenExchange ? [TOKEN_EXCHANGE] : []),
    ],
    // RFC 8414 §2 makes this member required: no authorization endpoint, no response types.
    response_types_supported: d ? ['code'] : [],
    ...(d
      ? {
          response_modes_supported: ['query'],
          code_challenge_methods_supported: ['S256'],
          // RFC 9207: every authorization response names its issuer (mix-up defence).
          authorization_response_iss_parameter_supported: true,
          ...(d.clientMetadataDocuments ? { client_id_metadata_document_supported: true } : {}),
        }
      : {}),
    token_endpoint_auth_methods_supported: [
      'private_key_jwt',
      ...(d ? ['none', 'client_secret_basic', 'client_secret_post'] : []),
    ],
    token_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGS],
  };
}

/** RFC 9728 protected resource metadata for the gateway: tokens must be minted by `issuer` for `audience`. */
export function protectedResourceMetadata(config: {
  issuer: string;
  audience: string;
  scopesSupported?: string[];
}): Record<string, unknown> {
  return {
    resource: config.audience,
    authorization_servers: [config.issuer],
    // Tokens only in the Authorization header: never in a query string (RFC 6750 §2.3 leaks).
    bearer_methods_supported: ['header'],
    scopes_supported: [...new Set(config.scopesSupported ?? [])].sort(),
    resource_name: 'Warden',
  };
}
