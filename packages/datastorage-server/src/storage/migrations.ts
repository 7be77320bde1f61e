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
