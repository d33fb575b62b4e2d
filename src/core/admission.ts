import { identityOf, judge } from './access.js'
import type { Identities } from './identities.js'
import { isThenable } from './thenable.js'
import type { Refusal } from './transport.js'

/** A request on its way to becoming a stream, as admission sees it. @internal */
export interface AdmissionRequest<Req> {
  readonly o: { readonly req: Req; readonly topics: readonly string[] }
  readonly done: boolean
  /** Its identity, once `identify` gave one and it took a place under the cap. */
  identity: string | undefined
  /** The earliest `until` of its topics, once authorized. */
  until: number
}

/** What admission needs of the openings: their bounded waits and their answers. @internal */
export interface AdmissionHost<W> {
  /** Waits for `promise`, unless the request times out or is answered first (then it rejects). */
  until<T>(w: W, promise: PromiseLike<T>): Promise<T>
  /** After a wait: whether the request is over. */
  gone(w: W): boolean
  /** Answers 500 and reports `ERR_PATCHWIRE_AUTHORIZE` with `message`. */
  fail(w: W, message: string, error: unknown): void
  /** Answers with `refusal`. */
  refuse(w: W, refusal: Refusal): void
}

/** What admission needs of the handler's options. @internal */
export interface AdmissionOptions<Req> {
  readonly authorize: ((req: Req, topic: string) => unknown) | undefined
  readonly identify: ((req: Req) => unknown) | undefined
}

/**
 * Whether a request may have its stream: whose it is (`identify`, once per
 * stream) and whether that identity has a place under
 * `maxStreamsPerIdentity`, then whether every topic is authorized and until
 * when. A request that may not is answered (403, 429 or 500). Synchronous
 * unless `identify` or `authorize` returned a promise.
 * @internal
 */
export class Admission<Req, W extends AdmissionRequest<Req>> {
  readonly #o: AdmissionOptions<Req>
  readonly #identities: Identities
  readonly #host: AdmissionHost<W>

  constructor(options: AdmissionOptions<Req>, identities: Identities, host: AdmissionHost<W>) {
    this.#o = options
    this.#identities = identities
    this.#host = host
  }

  /** Whether the request is admitted; when not, it has been answered. */
  admit(w: W): boolean | Promise<boolean> {
    const identified = this.#identify(w)
    if (!isThenable(identified)) return identified && this.#authorize(w)
    return identified.then((ok) => ok && this.#authorize(w))
  }

  /**
   * Whether the request has a place under `maxStreamsPerIdentity` (or no
   * identity); when not, the request is answered. Synchronous unless
   * `identify` returned a promise.
   */
  #identify(w: W): boolean | Promise<boolean> {
    const { identify } = this.#o
    if (identify === undefined) return true
    let value: unknown
    try {
      value = identify(w.o.req)
    } catch (error) {
      return this.#identifyFailed(w, error)
    }
    if (!isThenable(value)) return this.#place(w, value)
    return this.#host.until(w, Promise.resolve(value)).then(
      (settled) => !this.#host.gone(w) && this.#place(w, settled),
      (error: unknown) => this.#identifyFailed(w, error),
    )
  }

  #place(w: W, value: unknown): boolean {
    const identity = identityOf(value)
    if (typeof identity === 'object') {
      this.#host.fail(w, `identify must return a non-empty string (a user or session id) or undefined, got ${identity.invalid}; the request was answered 500`, undefined)
      return false
    }
    if (identity === undefined) return true
    if (!this.#identities.take(identity)) {
      this.#host.refuse(w, TOO_MANY)
      return false
    }
    w.identity = identity
    return true
  }

  #identifyFailed(w: W, error: unknown): false {
    if (!w.done) this.#host.fail(w, 'identify threw or rejected; the request was answered 500', error)
    return false
  }

  /**
   * Whether every topic of the request is authorized, and until when; when
   * not, the request is answered. Synchronous unless `authorize` returned a promise.
   */
  #authorize(w: W): boolean | Promise<boolean> {
    const { authorize } = this.#o
    if (authorize === undefined) return true
    const { o } = w
    let verdicts: unknown[]
    try {
      verdicts = o.topics.map((topic) => authorize(o.req, topic))
    } catch (error) {
      return this.#authorizeFailed(w, error)
    }
    if (!verdicts.some(isThenable)) return !this.#host.gone(w) && this.#judge(w, verdicts)
    // Promise.all adopts any thenable without letting a throwing `then` escape.
    return this.#host.until(w, Promise.all(verdicts)).then(
      (settled) => !this.#host.gone(w) && this.#judge(w, settled),
      (error: unknown) => this.#authorizeFailed(w, error),
    )
  }

  #judge(w: W, verdicts: readonly unknown[]): boolean {
    const verdict = judge(verdicts, Date.now())
    if ('until' in verdict) {
      w.until = verdict.until
      return true
    }
    if ('invalid' in verdict) {
      this.#host.fail(w, `authorize must return true, false or { until } (an epoch time in milliseconds, or a Date), got ${verdict.invalid} for a topic of [${w.o.topics.join(', ')}]; the request was answered 500`, undefined)
    } else {
      this.#host.refuse(w, verdict.refused === 'expired' ? EXPIRED : FORBIDDEN)
    }
    return false
  }

  #authorizeFailed(w: W, error: unknown): false {
    if (!w.done) this.#host.fail(w, `authorize threw for a topic of [${w.o.topics.join(', ')}]; the request was answered 500`, error)
    return false
  }
}

const FORBIDDEN: Refusal = { status: 403, message: 'Forbidden: the handler\'s authorize option did not return true for every topic of this stream' }
const EXPIRED: Refusal = { status: 403, message: 'Forbidden: authorize gave an until that has already passed' }
const TOO_MANY: Refusal = { status: 429, message: 'Too Many Requests: this identity has as many event streams open as the handler allows (option maxStreamsPerIdentity); close one first' }
