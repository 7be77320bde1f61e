// SPDX-License-Identifier: Apache-2.0
/*
 * Versioned schema migrations, applied at start in one transaction under an advisory lock
 * (safe when several servers start against one database). Both backends run the same SQL.
 */
import type { SqlDatabase } from './sql.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Advisory lock (two-int form, its own key space) serialising migrations. */
const MIGRATION_LOCK = 'pg_advisory_xact_lock(1802071156, 1)';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'audit_events',
    sql: `
CREATE TABLE audit_events (
  event_id UUID NOT NULL,
  event_version VARCHAR(10) NOT NULL DEFAULT '1.0',
  event_timestamp TIMESTAMPTZ NOT NULL,
  event_date DATE NOT NULL,
  event_type VARCHAR(100) NOT NULL,
  event_category VARCHAR(50) NOT NULL,
  event_action VARCHAR(50) NOT NULL,
  event_outcome VARCHAR(20) NOT NULL,
  actor_type VARCHAR(50) NOT NULL,
  actor_id VARCHAR(255) NOT NULL,
  actor_ip INET,
  resource_type VARCHAR(100) NOT NULL,
  resource_id VARCHAR(255) NOT NULL,
  correlation_id VARCHAR(255) NOT NULL,
  parent_event_id UUID,
  parent_event_date DATE,
  namespace VARCHAR(253),
  cluster_id VARCHAR(255),
  event_data JSONB NOT NULL,
  severity VARCHAR(20),
  duration_ms INTEGER,
  error_code VARCHAR(50),
  error_message TEXT,
  retention_days INTEGER NOT NULL DEFAULT 2555 CHECK (retention_days BETWEEN 1 AND 2555),
  is_sensitive BOOLEAN NOT NULL DEFAULT FALSE,
  event_hash TEXT NOT NULL,
  previous_event_hash TEXT NOT NULL DEFAULT '',
  chain_position BIGINT NOT NULL,
  legal_hold BOOLEAN NOT NULL DEFAULT FALSE,
  legal_hold_reason TEXT,
  legal_hold_placed_by TEXT,
  legal_hold_placed_at TIMESTAMPTZ,
  PRIMARY KEY (event_id, event_date)
) PARTITION BY RANGE (event_date);

ALTER TABLE audit_events ADD CONSTRAINT fk_audit_events_parent
  FOREIGN KEY (parent_event_id, parent_event_date)
  REFERENCES audit_events (event_id, event_date) ON DELETE RESTRICT;

-- Query order (newest first) and the chain walk / chain head lookup per correlation_id.
CREATE INDEX idx_audit_events_timestamp ON audit_events (event_timestamp);
CREATE INDEX idx_audit_events_chain ON audit_events (correlation_id, event_timestamp, chain_position);
CREATE INDEX idx_audit_events_type ON audit_events (event_type, event_timestamp);
`,
  },
  {
    version: 2,
    name: 'audit_event_immutability',
    sql: `
CREATE FUNCTION audit_events_prevent_tampering() RETURNS trigger AS $$
BEGIN
  IF OLD.event_id IS DISTINCT FROM NEW.event_id
     OR OLD.event_version IS DISTINCT FROM NEW.event_version
     OR OLD.event_timestamp IS DISTINCT FROM NEW.event_timestamp
     OR OLD.event_type IS DISTINCT FROM NEW.event_type
     OR OLD.event_category IS DISTINCT FROM NEW.event_category
     OR OLD.event_action IS DISTINCT FROM NEW.event_action
     OR OLD.event_outcome IS DISTINCT FROM NEW.event_outcome
     OR OLD.actor_type IS DISTINCT FROM NEW.actor_type
     OR OLD.actor_id IS DISTINCT FROM NEW.actor_id
     OR OLD.actor_ip IS DISTINCT FROM NEW.actor_ip
     OR OLD.resource_type IS DISTINCT FROM NEW.resource_type
     OR OLD.resource_id IS DISTINCT FROM NEW.resource_id
     OR OLD.correlation_id IS DISTINCT FROM NEW.correlation_id
     OR OLD.parent_event_id IS DISTINCT FROM NEW.parent_event_id
     OR OLD.event_data IS DISTINCT FROM NEW.event_data
     OR OLD.event_hash IS DISTINCT FROM NEW.event_hash
     OR OLD.previous_event_hash IS DISTINCT FROM NEW.previous_event_hash
     OR OLD.chain_position IS DISTINCT FROM NEW.chain_position
  THEN
    RAISE EXCEPTION 'AU-9: audit event % is immutable (core columns cannot be modified)', OLD.event_id
      USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER enforce_audit_event_immutability
  BEFORE UPDATE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_prevent_tampering();
`,
  },
  {
    version: 3,
    name: 'linear_chains_keyed_hashes_legal_hold',
    sql: `
-- The algorithm of each row's hash (upstream's names): rows written before keep the default.
ALTER TABLE audit_events ADD COLUMN hash_algorithm TEXT NOT NULL DEFAULT 'sha256-unkeyed';

-- The head of each chain: its highest position. A write moves the head of every correlation
-- it appends to from the position it read to the position it wrote (audit_chain_advance), so
-- two writers can never both extend one head: the chain is linear, in commit order.
CREATE TABLE audit_event_chain_heads (
  correlation_id VARCHAR(255) PRIMARY KEY,
  chain_position BIGINT NOT NULL CHECK (chain_position > 0),
  event_id UUID NOT NULL,
  event_hash TEXT NOT NULL
);
INSERT INTO audit_event_chain_heads (correlation_id, chain_position, event_id, event_hash)
SELECT DISTINCT ON (correlation_id) correlation_id, chain_position, event_id, event_hash
FROM audit_events ORDER BY correlation_id, chain_position DESC, event_timestamp DESC;

-- Chains are walked by position: a unique (correlation_id, chain_position) index on every
-- partition (a unique index of the partitioned table would have to include event_date) takes
-- the place of the (correlation_id, event_timestamp, chain_position) index.
DROP INDEX idx_audit_events_chain;
DO $do$
DECLARE p record;
BEGIN
  FOR p IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'audit_events'::regclass LOOP
    BEGIN
      EXECUTE format('CREATE UNIQUE INDEX %I ON %I (correlation_id, chain_position)',
                     p.relname || '_chain', p.relname);
    EXCEPTION WHEN unique_violation THEN
      -- Chains forked by an earlier version: keep the data, index it, let verify-chain say so.
      RAISE WARNING 'partition % holds reused chain positions; its chain index is not unique', p.relname;
      EXECUTE format('CREATE INDEX %I ON %I (correlation_id, chain_position)',
                     p.relname || '_chain', p.relname);
    END;
  END LOOP;
END
$do$;

-- Takes the advisory lock of each correlation (keys in the order given: sorted by the caller,
-- so that writers cannot deadlock), then reads the heads with a snapshot taken after the locks.
CREATE FUNCTION audit_chain_lock(lock_keys BIGINT[], correlation_ids TEXT[])
RETURNS TABLE (correlation_id TEXT, chain_position BIGINT, event_hash TEXT)
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
  -- One statement: unnest yields the keys in array order, and they are locked in that order.
  PERFORM count(pg_advisory_xact_lock(k)) FROM unnest(lock_keys) AS k;
  RETURN QUERY
    SELECT h.correlation_id::text, h.chain_position, h.event_hash
    FROM audit_event_chain_heads h WHERE h.correlation_id = ANY (correlation_ids);
END
$fn$;

-- Moves each head from the position the writer read to the one it wrote; fails (40001, the
-- writer retries) when any head is not where the writer read it.
CREATE FUNCTION audit_chain_advance(correlation_ids TEXT[], from_positions BIGINT[],
  to_positions BIGINT[], head_event_ids UUID[], head_hashes TEXT[])
RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE moved INTEGER; created INTEGER;
BEGIN
  UPDATE audit_event_chain_heads h
  SET chain_position = v.to_pos, event_id = v.eid, event_hash = v.hash
  FROM unnest(correlation_ids, from_positions, to_positions, head_event_ids, head_hashes)
       AS v(cid, from_pos, to_pos, eid, hash)
  WHERE v.from_pos > 0 AND h.correlation_id = v.cid AND h.chain_position = v.from_pos;
  GET DIAGNOSTICS moved = ROW_COUNT;
  INSERT INTO audit_event_chain_heads (correlation_id, chain_position, event_id, event_hash)
  SELECT v.cid, v.to_pos, v.eid, v.hash
  FROM unnest(correlation_ids, from_positions, to_positions, head_event_ids, head_hashes)
       AS v(cid, from_pos, to_pos, eid, hash)
  WHERE v.from_pos = 0
  ON CONFLICT ON CONSTRAINT audit_event_chain_heads_pkey DO NOTHING;
  GET DIAGNOSTICS created = ROW_COUNT;
  IF moved + created <> cardinality(correlation_ids) THEN
    RAISE EXCEPTION 'a chain head moved during the write' USING ERRCODE = '40001';
  END IF;
END
$fn$;

-- Every hashed column (and the hash metadata, the partition key and the chain) is immutable.
CREATE OR REPLACE FUNCTION audit_events_prevent_tampering() RETURNS trigger AS $fn$
BEGIN
  IF OLD.event_id IS DISTINCT FROM NEW.event_id
     OR OLD.event_version IS DISTINCT FROM NEW.event_version
     OR OLD.event_timestamp IS DISTINCT FROM NEW.event_timestamp
     OR OLD.event_date IS DISTINCT FROM NEW.event_date
     OR OLD.event_type IS DISTINCT FROM NEW.event_type
     OR OLD.event_category IS DISTINCT FROM NEW.event_category
     OR OLD.event_action IS DISTINCT FROM NEW.event_action
     OR OLD.event_outcome IS DISTINCT FROM NEW.event_outcome
     OR OLD.actor_type IS DISTINCT FROM NEW.actor_type
     OR OLD.actor_id IS DISTINCT FROM NEW.actor_id
     OR OLD.actor_ip IS DISTINCT FROM NEW.actor_ip
     OR OLD.resource_type IS DISTINCT FROM NEW.resource_type
     OR OLD.resource_id IS DISTINCT FROM NEW.resource_id
     OR OLD.correlation_id IS DISTINCT FROM NEW.correlation_id
     OR OLD.parent_event_id IS DISTINCT FROM NEW.parent_event_id
     OR OLD.parent_event_date IS DISTINCT FROM NEW.parent_event_date
     OR OLD.namespace IS DISTINCT FROM NEW.namespace
     OR OLD.cluster_id IS DISTINCT FROM NEW.cluster_id
     OR OLD.event_data IS DISTINCT FROM NEW.event_data
     OR OLD.severity IS DISTINCT FROM NEW.severity
     OR OLD.duration_ms IS DISTINCT FROM NEW.duration_ms
     OR OLD.error_code IS DISTINCT FROM NEW.error_code
     OR OLD.error_message IS DISTINCT FROM NEW.error_message
     OR OLD.retention_days IS DISTINCT FROM NEW.retention_days
     OR OLD.is_sensitive IS DISTINCT FROM NEW.is_sensitive
     OR OLD.event_hash IS DISTINCT FROM NEW.event_hash
     OR OLD.previous_event_hash IS DISTINCT FROM NEW.previous_event_hash
     OR OLD.hash_algorithm IS DISTINCT FROM NEW.hash_algorithm
     OR OLD.chain_position IS DISTINCT FROM NEW.chain_position
  THEN
    RAISE EXCEPTION 'AU-9: audit event % is immutable (core columns cannot be modified)', OLD.event_id
      USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END;
$fn$ LANGUAGE plpgsql;

-- As upstream: an event under legal hold cannot be deleted.
CREATE FUNCTION audit_events_prevent_legal_hold_deletion() RETURNS trigger AS $fn$
BEGIN
  IF OLD.legal_hold THEN
    RAISE EXCEPTION 'Cannot delete audit event with legal hold: event_id=%, correlation_id=%',
      OLD.event_id, OLD.correlation_id
      USING HINT = 'Release the legal hold before deletion', ERRCODE = '23503';
  END IF;
  RETURN OLD;
END;
$fn$ LANGUAGE plpgsql;

CREATE TRIGGER enforce_legal_hold
  BEFORE DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_prevent_legal_hold_deletion();
`,
  },
];

/** Applies the migrations not yet recorded in `datastorage_schema_migrations`; returns their versions. */
export async function migrate(
  db: SqlDatabase,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  return db.transaction(async (tx) => {
    await tx.query(`SELECT ${MIGRATION_LOCK}`);
    await tx.exec(`CREATE TABLE IF NOT EXISTS datastorage_schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
    const rows = await tx.query<{ version: number }>(
      'SELECT version FROM datastorage_schema_migrations',
    );
    const done = new Set(rows.map((r) => Number(r.version)));
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      await tx.exec(m.sql);
      await tx.query('INSERT INTO datastorage_schema_migrations (version, name) VALUES ($1, $2)', [
        m.version,
        m.name,
      ]);
      applied.push(m.version);
    }
    return applied;
  });
}
