// Verify the gateway's X-Tenant header in a Node backend with node:crypto alone. HS256, the default.
import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";

// The gateway uses the file's bytes less trailing whitespace (space, tab, CR, LF) as the key.
export function loadSecret(path) {
  const bytes = readFileSync(path);
  let end = bytes.length;
  while (end > 0 && [0x20, 0x09, 0x0d, 0x0a].includes(bytes[end - 1])) end--;
  return bytes.subarray(0, end);
}

export function verifyTenant(token, secret, method, path, { issuer = "tenant-gateway", audience = "default" } = {}) {
  const [h, p, s] = String(token).split(".");
  const header = JSON.parse(Buffer.from(h, "base64url"));
  if (header.alg !== "HS256" || header.typ !== "JWT") throw new Error("unexpected alg");
  const expected = createHmac("sha256", secret).update(`${h}.${p}`).digest();
  const given = Buffer.from(s ?? "", "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new Error("bad signature");
  const claims = JSON.parse(Buffer.from(p, "base64url"));
  const now = Math.floor(Date.now() / 1000);
  if (claims.iss !== issuer || claims.aud !== audience) throw new Error("wrong issuer or audience");
  if (!(claims.exp + 5 >= now)) throw new Error("expired");
  // htm and htu bind the token to this request (htu: the path without the query).
  if (claims.htm !== method || claims.htu !== path.split("?")[0]) throw new Error("X-Tenant was issued for another request");
  return claims;
}

// node verify_tenant.mjs TOKEN SECRET_FILE METHOD PATH
if (process.argv[1]?.endsWith("verify_tenant.mjs")) {
  const [token, file, method, path] = process.argv.slice(2);
  try {
    console.log(JSON.stringify(verifyTenant(token, loadSecret(file), method, path)));
  } catch (e) {
    console.error(`refused: ${e.message}`);
    process.exit(1);
  }
}
