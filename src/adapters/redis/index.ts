import type { Broker } from '../../broker/broker.js'
import { channelsOf } from './clients.js'
import { ConnectionWatch } from './connection.js'
import { Feed } from './feed.js'
import { HistoryReads } from './history-reads.js'
import { LocalHistory } from './local-history.js'
import { resolveOptions } from './options.js'
import type { RedisBrokerOptions } from './options.js'
import { publishOnly } from './publish-only.js'
import { Publisher } from './publisher.js'
import { Reader } from './reader.js'
import { Revocations } from './revocation.js'
import type { TopicAnswer } from './reader.js'
import { ScriptRunner } from './script-runner.js'
import { READ_SCRIPT, historyArgs, keyLayout, lastKeyTtlMs, parseReadReply } from './scripts.js'
import { Subscriptions } from './subscriptions.js'
import type { SubscribedTopic } from './subscriptions.js'

export type { IoRedisClient, NodeRedisClient, RedisClient } from './clients.js'
export type { RedisBrokerOptions } from './options.js'

/** The process-local cache of recent messages, over all topics. */
const LOCAL_HISTORY_BYTES = 16 * 1024 * 1024

/**
 * Creates a {@link Broker} over Redis: a publish in any process reaches the
 * streams of every process connected to the same Redis, and the history
 * that resume replays from lives in Redis too, so that event ids and resume
 * hold on every process and across restarts of those processes.
 *
 * Publishing is one Lua script (`EVALSHA`, falling back to `EVAL` after
 * `NOSCRIPT`), one round trip: it takes the next position of the broker's
 * single counter (one order across all topics), appends the payload to the
 * topic's Redis Stream (about `history` entries, expiring `historyMs` after
 * the topic's last publish) and publishes it with its position on the
 * channel `prefix + topic`. A publish made while no script call is under
 * way goes out at once; those made while calls are under way go out
 * together at the end of the event-loop turn, up to 256 (or 1 MiB of payloads) in one call, in
 * publish order. `publish` resolves with the message's id,
 * `<epoch>-<position>`. The process holds one `SUBSCRIBE` per topic however
 * many listeners it has, and `UNSUBSCRIBE`s after the last leaves; the
 * function `subscribe` returns carries a `ready` Promise that settles once
 * the `SUBSCRIBE` is live and the topic's start position is read (it
 * rejects with `ERR_PATCHWIRE_BROKER` if subscribing failed).
 *
 * `revoke` and `onRevoke` give the revocation capability: one script call
 * appends the revocation to a log under the prefix (a Redis Stream of about
 * the last 10 000 revocations) and publishes it on a control channel, which
 * reaches the handlers of every process on the same Redis and prefix (see
 * `revoke` in `patchwire`). A process whose subscriber was down reads the
 * revocations it missed from the log when it is back: the streams open
 * before the outage get their `revoked` frames, those opened since are
 * judged by `authorize` again.
 *
 * `position(topic)` and `replay(topic, after)` give the history capability.
 * Both settle only once every message up to their position (for a replay,
 * its last frame) that this process's listeners get has reached them, and
 * so does `ready` for the topic's start position: the subscriber connection
 * may still be delivering a message of another topic published just before,
 * which a stream starting there would otherwise skip. That costs a `PING` on
 * the subscriber connection (shared by the positions asked in one turn),
 * unless the process has already delivered a message at or after the
 * position, or has no subscriptions at all. `replay` answers from the
 * process's own cache of recent messages, without
 * a round trip, when the topic is subscribed and the cache reaches back to
 * `after` (16 MiB over all topics, `history` per topic), and concurrent
 * identical replays share one round trip.
 *
 * What each Redis failure does:
 * - The subscriber's connection drops (network, `CLIENT KILL TYPE pubsub`,
 *   Redis cutting a slow subscriber): messages are held until every topic
 *   is subscribed again and what it missed is read back from its stream,
 *   then delivered in order; no reset. The revocations it missed are read
 *   from the revocation log and delivered before the ones heard since.
 * - A hole the stream no longer covers (more than `history` messages
 *   missed, or older than `historyMs`): that topic's `onGap`; a replay from
 *   before it is refused as `history-exceeded`. A hole in the revocation
 *   log (more than about 10 000 revocations made during the outage, or
 *   Redis lost its data) is reported through `onError`; the streams it may
 *   have concerned still end at their `until`.
 * - Redis lost its data (restart without persistence, `FLUSHALL`, eviction
 *   of the broker's keys; or a restore from a snapshot older than positions
 *   a process has seen): a new epoch, so every topic's `onGap` is called
 *   and old ids are refused as `foreign-id` (a reset, never a silent skip).
 *   Positions keep increasing across the change (they start from Redis's
 *   clock), so Redis's clock must not go back.
 * - A script call that fails (Redis unreachable, no answer in time, a
 *   refused script) rejects every publish it carried; a message whose keys
 *   Redis refuses (another type) rejects alone and is not published.
 * - The publisher is down: `publish` rejects at once with
 *   `ERR_PATCHWIRE_BROKER` (before its first connection, it waits up to
 *   `publishTimeoutMs` instead). Every loss of a connection is reported
 *   once through `onError`; a subscriber that gives up reconnecting is
 *   reported, every topic is reset and `subscribe` refuses until it is
 *   connected again.
 * - A publish nobody awaits or catches that fails goes to `onError`
 *   instead of becoming an unhandled rejection.
 *
 * Scale: one order means one counter key, which is one hash slot under
 * Redis Cluster, so every publish of the broker runs on one node. Under Cluster,
 * give the prefix a hash tag (`{app}:`) so that the counter and every
 * topic's keys share that slot (a script may only touch one slot), and use
 * a node-redis or ioredis client connected to that slot's node. Beyond one
 * node, shard the topics: one broker (one prefix, each its own hash tag)
 * per shard, each topic always published and subscribed through its
 * shard's broker, and a stream carrying topics of one shard only (one
 * `Last-Event-ID` is one position in one order).
 *
 * Without a `subscriber`, the broker only publishes and revokes (a worker
 * needs one connection): `subscribe`, `position`, `replay` and `onRevoke`
 * throw a TypeError naming the option.
 *
 * @param options - see {@link RedisBrokerOptions}
 * @returns a {@link Broker} with `position` and `replay`, and `revoke` and `onRevoke`; its `publish`
 * rejects with a {@link PatchwireError} of code `ERR_PATCHWIRE_BROKER` (the
 * client's error as `cause`) when Redis is unreachable or does not confirm
 * within `publishTimeoutMs`
 * @throws TypeError when the publisher is missing, a client is neither a
 * node-redis nor an ioredis client, when both options are the same client, or when `prefix` is
 * not a string or `onError` not a function
 * @throws RangeError when `history` is not a whole number from 0, `historyMs`
 * not a whole number of milliseconds from 1, or `publishTimeoutMs` not a
 * positive number up to 2147483647 (the longest `setTimeout` delay)
 * @example
 * import { createClient } from 'redis'
 * import { createHandler, publish } from 'patchwire'
 * import { createRedisBroker } from 'patchwire/redis'
 *
 * const publisher = await createClient({ url: process.env.REDIS_URL }).connect()
 * const subscriber = await publisher.duplicate().connect()
 * const broker = createRedisBroker({ publisher, subscriber })
 * const events = createHandler({ broker })
 * await publish(broker, 'room:1', [['add', '/messages/-', 'hi']])
 * @example
 * import { Redis } from 'ioredis'
 * const broker = createRedisBroker({ publisher: new Redis(url), subscriber: new Redis(url) })
 * // Not awaited: a failure goes to onError (console.error by default).
 * setInterval(() => publish(broker, 'clock', [['replace', '/now', Date.now()]]), 1000)
 */
export function createRedisBroker(options: RedisBrokerOptions): Broker {
  const { publisher, subscriber, prefix, history, historyMs, publishTimeoutMs, onError } = resolveOptions(options)
  const layout = keyLayout(prefix)
  const lastTtlMs = lastKeyTtlMs(historyMs)
  const localHistory = new LocalHistory(history, LOCAL_HISTORY_BYTES)
  // Keyed by channel (prefix + topic): the subscriptions add and remove
  // topics; the feed and the history reads look them up.
  const topics = new Map<string, SubscribedTopic>()
  const runner = new ScriptRunner(publisher, publishTimeoutMs, onError)
  // Reads run in a later turn (see Reader), once the feed below exists.
  const reader = new Reader(layout, (keys, topicArgs) => runner.run(
    READ_SCRIPT,
    keys,
    () => [...historyArgs(feed.known, lastTtlMs), ...topicArgs],
    `read the position and history of ${(keys.length - 2) / 2} topic(s)`,
    false,
  ).then(parseReadReply))
  const read = (topic: string, after?: number): Promise<TopicAnswer> => reader.read(topic, after)

  const feed: Feed = new Feed({
    topics,
    history: localHistory,
    read,
    // Without a subscriber no topic is ever subscribed, so nothing waits for delivery.
    ping: () => subscriber === undefined ? Promise.resolve() : subscriber.command(['PING']),
    timeoutMs: publishTimeoutMs,
    onError,
  })
  const publishing = new Publisher({ layout, runner, feed, history, historyMs, lastTtlMs, onError })
  const revocations = new Revocations({
    publisher,
    subscriber,
    prefix,
    timeoutMs: publishTimeoutMs,
    read: (script, keys, args, what) => runner.run(script, keys, () => args, what, false),
    onError,
  })
  if (subscriber === undefined) return publishOnly(publishing, revocations)
  const subscriptions = new Subscriptions({
    topics,
    channels: channelsOf(subscriber, (message, channel) => feed.receive(message, channel)),
    channelOf: layout.channel,
    isConnected: () => subscriber.isReady(),
    feed,
    history: localHistory,
    onError,
  })
  // An outage of the subscriber holds the feed; its return subscribes every
  // topic and the control channel again and refills what each missed (the
  // revocations from the log); its end resets them all.
  new ConnectionWatch(subscriber, 'subscriber', onError, {
    onLost: () => {
      feed.lost()
      revocations.lost()
    },
    onReady: (first) => {
      subscriptions.resubscribe(first)
      revocations.resubscribe()
    },
    onClose: (report) => {
      subscriptions.closed(report)
      feed.closed(report)
    },
  })
  // Connected already: nothing to hold back or refill.
  if (subscriber.isReady()) feed.resumed([], [])

  const reads = new HistoryReads({ topics, channelOf: layout.channel, feed, history: localHistory, read })
  return {
    publish: (topic, payload) => publishing.publish(topic, payload),
    subscribe: (topic, listener, onGap) => subscriptions.subscribe(topic, listener, onGap),
    position: (topic) => reads.position(topic),
    replay: (topic, after) => reads.replay(topic, after),
    revoke: (revocation) => revocations.revoke(revocation),
    onRevoke: (listener) => revocations.onRevoke(listener),
  }
}
