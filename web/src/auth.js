// Sign-in: the Cognito hosted UI (authorization code + PKCE) in AWS, the local issuer locally.
// The ID token is kept in sessionStorage only: closing the tab signs out.

const TOKEN_KEY = "order-router.token";
const PKCE_KEY = "order-router.pkce";

function decodeClaims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload.padEnd(payload.length + ((4 - (payload.length % 4)) % 4), "=")));
  } catch {
    return null;
  }
}

export function sessionFromToken(token) {
  const claims = token && decodeClaims(token);
  if (!claims || typeof claims.exp !== "number" || claims.exp * 1000 <= Date.now()) return null;
  return {
    token,
    user: claims["cognito:username"] || claims.email || claims.sub,
    groups: claims["cognito:groups"] || [],
    expiresAt: claims.exp * 1000,
  };
}

export function storedSession() {
  return sessionFromToken(sessionStorage.getItem(TOKEN_KEY));
}

export function keepSession(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  return sessionFromToken(token);
}

export function forgetSession() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// -- local mode ---------------------------------------------------------------------------------

export async function localSignIn(config, user, groups) {
  const response = await fetch(config.signIn, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ user, groups }),
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = (body && body.error && body.error.message) || `HTTP ${response.status}`;
    throw new Error(message);
  }
  return keepSession(body.idToken);
}

// -- Cognito hosted UI, authorization code with PKCE (RFC 7636) --------------------------------

function base64url(bytes) {
  let text = "";
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function redirectUri() {
  return `${window.location.origin}/`;
}

export async function cognitoSignIn(config) {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state }));
  const url = new URL(`${config.cognito.domain}/oauth2/authorize`);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.cognito.clientId,
    redirect_uri: redirectUri(),
    scope: "openid email",
    code_challenge_method: "S256",
    code_challenge: challenge,
    state,
  }).toString();
  window.location.assign(url.toString());
}

// Finish a hosted-UI round trip when the URL carries ?code=&state=; null when it does not.
export async function completeCognitoSignIn(config) {
  const params = new URLSearchParams(window.location.search);
  const code = params.get("code");
  if (!code || config.auth !== "cognito") return null;
  const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || "null");
  sessionStorage.removeItem(PKCE_KEY);
  window.history.replaceState(null, "", "/");
  if (!saved || saved.state !== params.get("state")) throw new Error("sign-in state mismatch: sign in again");
  const response = await fetch(`${config.cognito.domain}/oauth2/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: config.cognito.clientId,
      code,
      redirect_uri: redirectUri(),
      code_verifier: saved.verifier,
    }),
  });
  if (!response.ok) throw new Error(`the identity provider refused the code (HTTP ${response.status})`);
  const tokens = await response.json();
  return keepSession(tokens.id_token);
}

export function signOutUrl(config) {
  if (config.auth !== "cognito") return null;
  const url = new URL(`${config.cognito.domain}/logout`);
  url.search = new URLSearchParams({ client_id: config.cognito.clientId, logout_uri: redirectUri() }).toString();
  return url.toString();
}
