/**
 * A topic this process subscribes to, its `subscribe` calls, and how they
 * are told of a message or of a gap: shared by the subscriptions (which add
 * and remove them) and the feed (which delivers to them).
 */
import type { Subscription } from '../listeners.js'

export type { Subscription }

/**
 * A subscribed topic. Its entry exists exactly while it has subscriptions;
 * one replaced by a newer one (unsubscribed, then subscribed again) is
 * ignored by whatever answers arrive for it later.
 * @internal
 */
export interface Topic {
  readonly name: string
  readonly channel: string
  readonly subscriptions: Set<Subscription>
  /**
   * Settles once the topic's SUBSCRIBE is live and its start position read;
   * resolved from then on, undefined once the last SUBSCRIBE failed.
   */
  ready: Promise<void> | undefined
  /** `subscribing` until Redis answers the SUBSCRIBE, then `live`, or `failed`. */
  status: 'subscribing' | 'live' | 'failed'
  /**
   * Every message of the topic after this position has been delivered, or
   * will arrive on the subscriber connection; undefined while unknown (the
   * start position could not be read, or a hole could not be refilled).
   */
  last: number | undefined
}

