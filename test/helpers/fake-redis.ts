/**
 * A stand-in for an ioredis client, for the unit tests of the Redis broker's
 * parts: it has the shape the broker recognises, answers each command with
 * what the test says, and is brought up and down by emitting the events the
 * library emits. No Redis is involved.
 */
import { EventEmitter } from 'node:events'
import type { IoRedisClient } from '../../src/adapters/redis/clients.ts'

export class FakeIoRedis extends EventEmitter implements IoRedisClient {
  status: string
  /** Every command sent, as its arguments. */
  readonly commands: string[][] = []
  /** Answers a command: a reply, or a rejection. */
  answer: (args: string[]) => Promise<unknown> = async () => 'OK'

  /** @param status - `'ready'` for a connected client, `'connecting'` for one that is not yet */
  constructor(status = 'ready') {
    super()
    this.status = status
  }

  call(command: string, ...args: string[]): Promise<unknown> {
    this.commands.push([command, ...args])
    return this.answer([command, ...args])
  }

  subscribe(channel: string): Promise<unknown> {
    return this.call('SUBSCRIBE', channel)
  }

  unsubscribe(channel: string): Promise<unknown> {
    return this.call('UNSUBSCRIBE', channel)
  }

  /** Connects (again), as ioredis does: `ready` once usable. */
  up(): void {
    this.status = 'ready'
    this.emit('ready')
  }

  /** Loses the connection, as ioredis does: `reconnecting`. */
  down(): void {
    this.status = 'reconnecting'
    this.emit('reconnecting')
  }
}
