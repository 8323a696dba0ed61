-- tenant-gateway: what the gateway reads from the platform's own database (PRODUCT.md §6,
-- "The PostgreSQL source"). Idempotent: run it again after an upgrade.
--
-- Written for the reference schema (Prisma-style tables in the search path):
--   "Shop"   (id uuid PK, subdomain text UNIQUE, "headlessMode" bool, "allowedOrigins" text[],
--             status text, "rateLimitRps" int, "rateLimitBurst" int)
--   "Domain" (hostname text PK, "shopId" uuid REFERENCES "Shop" ON DELETE CASCADE)
--   "ApiKey" (id text PK, "shopId" uuid REFERENCES "Shop" ON DELETE CASCADE, "hashedKey" text UNIQUE,
--             kind text, mode text, "revokedAt" timestamptz)
--
-- ANOTHER SCHEMA? Keep the two views' column names and types, and the outbox contract:
--   * rewrite the SELECTs of tenant_gateway.shops and tenant_gateway.api_keys over your tables;
--   * put a trigger on every table those views read, calling tenant_gateway.note_change('shop', <shop id>)
--     or tenant_gateway.note_change('api_key', <key id>) for the OLD and the NEW row of each change
--     (a domain or origin table notes its shop; a key moving shops notes the key).
--   * index every column a view's subquery filters on: the start read runs that subquery once per
--     shop, so without an index it scans the whole table each time (20 s at 20 000 shops, hours at
--     a million; with the index, seconds).
--   * index each view's id as the view spells it (here id::text): the gateway re-reads changed rows
--     with WHERE id::text = ANY(...), and without that index every commit scans the table (100 ms
--     and more per change at a million shops; with it, 0.1 ms).
-- The gateway only ever SELECTs from the views and the outbox (and, with tls.acme.storage: postgres,
-- writes its three ACME tables); grant it exactly that (below).
--
-- PRUNING THE OUTBOX: rows are needed only until every gateway has read them. Delete old ones from a
-- cron job, keeping a margin (a gateway that was disconnected longer than the margin resyncs whole,
-- which is safe, just slower):
--   DELETE FROM tenant_gateway.changes WHERE changed_at < now() - interval '7 days';

CREATE SCHEMA IF NOT EXISTS tenant_gateway;

-- The shops view gathers each shop's domains by "shopId" (also what ON DELETE CASCADE looks up). On
-- a large live table, create it first with CREATE INDEX CONCURRENTLY (outside a transaction), and this
-- line finds it there.
CREATE INDEX IF NOT EXISTS "Domain_shopId_idx" ON "Domain" ("shopId");
-- The shops view exposes the uuid as text; the re-read of a changed shop filters on that text.
CREATE INDEX IF NOT EXISTS "Shop_id_text_idx" ON "Shop" ((id::text));

CREATE OR REPLACE VIEW tenant_gateway.shops AS
SELECT s.id::text AS id,
       s.subdomain,
       COALESCE((SELECT array_agg(d.hostname ORDER BY d.hostname) FROM "Domain" d WHERE d."shopId" = s.id), '{}')::text[]
         AS custom_domains,
       s."headlessMode" AS headless_mode,
       s."allowedOrigins"::text[] AS allowed_origins,
       s.status,
       s."rateLimitRps" AS rate_limit_rps,
       s."rateLimitBurst" AS rate_limit_burst
FROM "Shop" s;

CREATE OR REPLACE VIEW tenant_gateway.api_keys AS
SELECT k.id,
       k."shopId"::text AS shop_id,
       k."hashedKey" AS sha256,
       k.kind,
       k.mode,
       (k."revokedAt" IS NOT NULL AND k."revokedAt" <= now()) AS revoked
FROM "ApiKey" k;

-- The outbox: one row per changed entity. seq is taken at insert, not at commit, so rows can become
-- visible out of seq order; the gateway re-reads a window behind the highest seq it has seen.
CREATE TABLE IF NOT EXISTS tenant_gateway.changes (
  seq bigserial PRIMARY KEY,
  entity text NOT NULL CHECK (entity IN ('shop', 'api_key')),
  id text NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS changes_changed_at ON tenant_gateway.changes (changed_at);

CREATE OR REPLACE FUNCTION tenant_gateway.note_change(p_entity text, p_id text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  s bigint;
BEGIN
  INSERT INTO tenant_gateway.changes (entity, id) VALUES (p_entity, p_id) RETURNING seq INTO s;
  -- Delivered at commit (and dropped on rollback); the payload is the seq, for logs.
  PERFORM pg_notify('tenant_gateway', s::text);
END $$;

CREATE OR REPLACE FUNCTION tenant_gateway.shop_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM tenant_gateway.note_change('shop', OLD.id::text); END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND (TG_OP = 'INSERT' OR NEW.id IS DISTINCT FROM OLD.id) THEN
    PERFORM tenant_gateway.note_change('shop', NEW.id::text);
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION tenant_gateway.domain_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM tenant_gateway.note_change('shop', OLD."shopId"::text); END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND (TG_OP = 'INSERT' OR NEW."shopId" IS DISTINCT FROM OLD."shopId") THEN
    PERFORM tenant_gateway.note_change('shop', NEW."shopId"::text);
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION tenant_gateway.api_key_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM tenant_gateway.note_change('api_key', OLD.id); END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND (TG_OP = 'INSERT' OR NEW.id IS DISTINCT FROM OLD.id) THEN
    PERFORM tenant_gateway.note_change('api_key', NEW.id);
  END IF;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS tenant_gateway_shop ON "Shop";
CREATE TRIGGER tenant_gateway_shop AFTER INSERT OR UPDATE OR DELETE ON "Shop"
  FOR EACH ROW EXECUTE FUNCTION tenant_gateway.shop_changed();
DROP TRIGGER IF EXISTS tenant_gateway_domain ON "Domain";
CREATE TRIGGER tenant_gateway_domain AFTER INSERT OR UPDATE OR DELETE ON "Domain"
  FOR EACH ROW EXECUTE FUNCTION tenant_gateway.domain_changed();
DROP TRIGGER IF EXISTS tenant_gateway_api_key ON "ApiKey";
CREATE TRIGGER tenant_gateway_api_key AFTER INSERT OR UPDATE OR DELETE ON "ApiKey"
  FOR EACH ROW EXECUTE FUNCTION tenant_gateway.api_key_changed();

-- ACME certificates for a fleet without a shared volume (PRODUCT.md §10, tls.acme.storage: postgres).
-- The only tables the gateway writes. Key material: restrict who else may read them.
CREATE TABLE IF NOT EXISTS tenant_gateway.certificates (
  domain text PRIMARY KEY,
  chain_pem text NOT NULL,          -- leaf first, as the CA sent it
  key_pem text NOT NULL,            -- the certificate's private key
  not_after timestamptz NOT NULL,
  issuer text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- The fleet's one ACME account key per CA directory.
CREATE TABLE IF NOT EXISTS tenant_gateway.acme_accounts (
  directory_url text PRIMARY KEY,
  key_pem text NOT NULL
);
-- Challenges pending validation, so any gateway answers the CA (rows live for seconds).
CREATE TABLE IF NOT EXISTS tenant_gateway.acme_challenges (
  name text PRIMARY KEY,            -- tls-alpn-01.<domain> or http-01.<token>
  domain text NOT NULL,
  key_authorization text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- A read-only role for the gateway (create it once, with a password of your choosing):
--   CREATE ROLE gateway LOGIN PASSWORD '…';
--   GRANT USAGE ON SCHEMA tenant_gateway TO gateway;
--   GRANT SELECT ON ALL TABLES IN SCHEMA tenant_gateway TO gateway;   -- the views and the outbox
-- Views run with their owner's rights, so the gateway needs no grant on "Shop", "Domain", "ApiKey".
-- With tls.acme.storage: postgres, it also writes the three ACME tables (and takes advisory locks,
-- which need no grant):
--   GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_gateway.certificates, tenant_gateway.acme_accounts,
--     tenant_gateway.acme_challenges TO gateway;
