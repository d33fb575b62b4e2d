/**
 * The broker's tables and statements. Four tables, named `patchwire_*`:
 * - `patchwire_state`: one row, the history's epoch and its counter. The
 *   publish statement increments the counter, and the row lock it takes is
 *   held until the publishing transaction ends: the next publish waits for
 *   it, so ids follow commit order, and a rollback gives its id back (ids
 *   have no holes).
 * - `patchwire_messages`: the kept messages, by id, with their topic.
 * - `patchwire_trims`: per topic, the highest id the trims deleted, so
 *   that a replay from before it is refused rather than short.
 * - `patchwire_revocations`: the recent revocations (the newest
 *   {@link KEPT_REVOCATIONS}), by id, so that a process whose `LISTEN`
 *   connection was lost reads the ones it did not hear.
 */

/** How many revocations `patchwire_revocations` keeps (see {@link TRIM_REVOCATIONS}). @internal */
export const KEPT_REVOCATIONS = 10_000

/**
 * The SQL that creates the broker's tables when they are missing, for
 * migration tools: the broker runs it itself on first use (under an
 * advisory lock, so that processes starting together do not race), and
 * it is a no-op once the tables exist, and adds the tables a database of
 * an earlier version lacks (`patchwire_revocations`). The publishing role
 * needs SELECT, INSERT, UPDATE and DELETE on the four tables.
 * @example
 * import { postgresSchema } from 'patchwire/postgres'
 * await pool.query(postgresSchema)
 */
export const postgresSchema = `CREATE TABLE IF NOT EXISTS patchwire_state (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  epoch text NOT NULL,
  seq bigint NOT NULL
);
INSERT INTO patchwire_state (epoch, seq)
  VALUES (substr(md5(random()::text || clock_timestamp()::text), 1, 12), 0)
  ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS patchwire_messages (
  seq bigint PRIMARY KEY,
  topic text NOT NULL,
  payload text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS patchwire_messages_topic_seq ON patchwire_messages (topic, seq);
CREATE TABLE IF NOT EXISTS patchwire_trims (
  topic text PRIMARY KEY,
  seq bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS patchwire_revocations (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  revocation text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
`

/** The channel that wakes the processes up: its payload is `<seq> <topic>`, or `<seq>` for a long topic. @internal */
export const MESSAGES_CHANNEL = 'patchwire'
/** The channel of revocations (see `Broker.revoke`). @internal */
export const REVOKE_CHANNEL = 'patchwire_revoke'

/**
 * {@link postgresSchema} in one transaction, under a transaction-scoped
 * advisory lock: concurrent `CREATE TABLE IF NOT EXISTS` of one table can
 * fail on PostgreSQL's catalog (a unique violation on `pg_type`).
 * @internal
 */
export const ENSURE_SCHEMA = `BEGIN;
SELECT pg_advisory_xact_lock(hashtext('patchwire_schema'));
${postgresSchema}COMMIT;`

/**
 * Takes the next id (locking the counter row until the caller's
 * transaction ends), keeps the message, and queues the notification that
 * PostgreSQL sends at commit and drops on rollback. One round trip.
 * Parameters: topic, payload. @internal
 */
export const PUBLISH = `WITH next AS (UPDATE patchwire_state SET seq = seq + 1 RETURNING epoch, seq),
kept AS (INSERT INTO patchwire_messages (seq, topic, payload) SELECT seq, $1, $2 FROM next)
SELECT epoch, seq::text AS seq,
  pg_notify('${MESSAGES_CHANNEL}', CASE WHEN octet_length($1) <= 1000 THEN seq::text || ' ' || $1 ELSE seq::text END)
FROM next`

/**
 * What the feed reads, in one statement (one snapshot): the epoch and the
 * counter, the messages of the subscribed topics after the position the
 * process reached, and which of those topics lost messages after it to a
 * trim. Every message up to the counter has committed (the counter row
 * lock), so nothing can later appear below it. Parameters: position,
 * topics. Rows: kind (`h` head, `t` trim, `m` message), topic (the epoch
 * for `h`), seq, payload. @internal
 */
export const READ_FEED = `SELECT 'h' AS kind, epoch AS topic, seq::text AS seq, NULL::text AS payload FROM patchwire_state
UNION ALL
SELECT 't', topic, seq::text, NULL FROM patchwire_trims WHERE topic = ANY($2::text[]) AND seq > $1
UNION ALL
SELECT 'm', topic, seq::text, payload FROM patchwire_messages WHERE topic = ANY($2::text[]) AND seq > $1`

/**
 * What a replay reads, in one statement: the epoch and the counter, the
 * highest id of the topic no longer kept (trimmed, or older than
 * `historyMs`), and the kept messages after the replay's id. Parameters:
 * topic, after, historyMs. Rows as in {@link READ_FEED}. @internal
 */
export const READ_REPLAY = `SELECT 'h' AS kind, epoch AS topic, seq::text AS seq, NULL::text AS payload FROM patchwire_state
UNION ALL
SELECT 't', topic, seq::text, NULL FROM patchwire_trims WHERE topic = $1
UNION ALL
SELECT 't', $1, max(seq)::text, NULL FROM patchwire_messages
  WHERE topic = $1 AND created_at < clock_timestamp() - $3::bigint * interval '1 millisecond'
UNION ALL
SELECT 'm', topic, seq::text, payload FROM patchwire_messages WHERE topic = $1 AND seq > $2`

/** The epoch and the counter. @internal */
export const READ_HEAD = `SELECT epoch, seq::text AS seq FROM patchwire_state`

/**
 * Starts a new epoch when the counter went back (a restore from an older
 * backup): ids issued since then would otherwise be issued again, for other
 * messages. Parameters: the old epoch, the new one. @internal
 */
export const NEW_EPOCH = `UPDATE patchwire_state SET epoch = $2 WHERE epoch = $1`

/**
 * Deletes, in one short statement off the publish path, the messages of
 * the given topics beyond the newest `history`, and every message older
 * than `historyMs`, and records per topic the highest id deleted. It locks
 * only the rows it deletes (a publish inserts new rows and never waits for
 * it). Parameters: topics, history, historyMs. @internal
 */
export const TRIM = `WITH ranked AS (
  SELECT seq, row_number() OVER (PARTITION BY topic ORDER BY seq DESC) AS n
  FROM patchwire_messages WHERE topic = ANY($1::text[])
), gone AS (
  DELETE FROM patchwire_messages
  WHERE seq IN (SELECT seq FROM ranked WHERE n > $2)
     OR created_at < clock_timestamp() - $3::bigint * interval '1 millisecond'
  RETURNING topic, seq
)
INSERT INTO patchwire_trims (topic, seq)
SELECT topic, max(seq) FROM gone GROUP BY topic
ON CONFLICT (topic) DO UPDATE SET seq = greatest(patchwire_trims.seq, excluded.seq)`

/**
 * Keeps a revocation and notifies every process of it, in one statement.
 * The notification is the revocation's JSON with its id as the first key
 * (`{"id":7,"origin":…}`). The advisory lock, taken
 * before the id (a volatile CTE runs first) and held until the statement
 * commits, makes revocations commit in id order: a process that heard id n
 * has heard every revocation up to n, so what it missed lies above.
 * Parameter: the revocation's JSON (an object). @internal
 */
export const REVOKE = `WITH locked AS (SELECT pg_advisory_xact_lock(hashtext('patchwire_revoke'))),
kept AS (INSERT INTO patchwire_revocations (revocation) SELECT $1 FROM locked RETURNING id)
SELECT pg_notify('${REVOKE_CHANNEL}', '{"id":' || id::text || ',' || substr($1, 2)) FROM kept`

/** The id of the newest revocation, `0` when none: where a process that starts listening begins. @internal */
export const READ_REVOCATIONS_HEAD = `SELECT coalesce(max(id), 0)::text AS id FROM patchwire_revocations`

/**
 * The revocations after an id, in id order, each with the smallest and the
 * largest id kept (a trim beyond the id shows as a smallest id above it, a
 * table that lost rows as a largest id below it); one row with a NULL id
 * when there is none after it. Parameter: the id. @internal
 */
export const READ_REVOCATIONS = `SELECT kept.first::text AS first, kept.last::text AS last, r.id::text AS id, r.revocation
FROM (SELECT min(id) AS first, max(id) AS last FROM patchwire_revocations) AS kept
LEFT JOIN patchwire_revocations AS r ON r.id > $1
ORDER BY r.id`

/**
 * Deletes the revocations beyond the newest {@link KEPT_REVOCATIONS}: the
 * oldest ones, so that the table always holds the revocations after some
 * id (no hole but those of failed inserts). @internal
 */
export const TRIM_REVOCATIONS = `DELETE FROM patchwire_revocations
WHERE id <= (SELECT max(id) FROM patchwire_revocations) - ${KEPT_REVOCATIONS}`

/** PostgreSQL's code for an undefined table: the database lost the broker's tables. @internal */
export const UNDEFINED_TABLE = '42P01'

/** A row of {@link READ_FEED} or {@link READ_REPLAY}. @internal */
export interface ReadRow {
  readonly kind: 'h' | 't' | 'm'
  readonly topic: string
  readonly seq: number
  readonly payload: string | null
}

/**
 * The rows of a read, typed, with the head (epoch and counter) apart and
 * the messages in id order.
 * @internal
 */
export function parseRead(rows: readonly Record<string, unknown>[]): { epoch: string, head: number, trims: ReadRow[], messages: ReadRow[] } {
  let epoch = ''
  let head = 0
  const trims: ReadRow[] = []
  const messages: ReadRow[] = []
  for (const raw of rows) {
    // max() over no rows gives one NULL row: nothing aged.
    if (raw['seq'] === null) continue
    const row: ReadRow = { kind: raw['kind'] as ReadRow['kind'], topic: String(raw['topic']), seq: Number(raw['seq']), payload: raw['payload'] as string | null }
    if (row.kind === 'h') {
      epoch = row.topic
      head = row.seq
    } else if (row.kind === 't') {
      trims.push(row)
    } else {
      messages.push(row)
    }
  }
  messages.sort((a, b) => a.seq - b.seq)
  return { epoch, head, trims, messages }
}
