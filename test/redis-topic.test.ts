/**
 * How a subscribed topic of patchwire/redis tells its listeners of a message
 * or of a gap: each active subscription once, one that throws reported
 * while the others still run.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { deliverToListeners, reportGap } from '../src/adapters/listeners.ts'
import type { Subscription, Topic } from '../src/adapters/redis/topic.ts'
import type { PatchwireError } from '../src/errors.ts'

const topic = (): Topic => ({ name: 'room', channel: 'p:room', subscriptions: new Set(), ready: undefined, status: 'live', last: 0 })

describe('topic listeners (patchwire/redis)', () => {
  it('gives a message to every active listener; one that throws is reported and the others still get it', () => {
    const room = topic()
    const got: string[] = []
    const errors: PatchwireError[] = []
    const boom = new Error('boom')
    room.subscriptions.add({ listener: () => { throw boom }, onGap: undefined, active: true })
    room.subscriptions.add({ listener: (payload, id) => got.push(`${payload} ${id}`), onGap: undefined, active: true })
    room.subscriptions.add({ listener: () => got.push('inactive'), onGap: undefined, active: false })
    deliverToListeners(room, '[1]', 'e-1', (error) => errors.push(error))
    assert.deepEqual(got, ['[1] e-1'], 'the active listener got it; the inactive one did not')
    assert.equal(errors.length, 1, 'the throw is reported once')
    assert.equal(errors[0]?.code, 'ERR_PATCHWIRE_LISTENER', 'as a listener error')
    assert.equal(errors[0]?.cause, boom, 'with what it threw')
    assert.match(errors[0]?.message ?? '', /a listener of topic "room" threw/, 'naming the topic')
  })

  it('does not give the message to a subscription a listener adds while it runs', () => {
    const room = topic()
    const got: string[] = []
    const late: Subscription = { listener: () => got.push('late'), onGap: undefined, active: true }
    room.subscriptions.add({ listener: () => { got.push('first'); room.subscriptions.add(late) }, onGap: undefined, active: true })
    deliverToListeners(room, '[1]', 'e-1', () => assert.fail('nothing throws'))
    assert.deepEqual(got, ['first'], 'the late subscription waits for the next message')
  })

  it('calls every active onGap; one that throws is reported and the others still run', () => {
    const room = topic()
    let gaps = 0
    const errors: PatchwireError[] = []
    room.subscriptions.add({ listener: () => {}, onGap: () => { throw new Error('boom') }, active: true })
    room.subscriptions.add({ listener: () => {}, onGap: () => { gaps++ }, active: true })
    room.subscriptions.add({ listener: () => {}, onGap: undefined, active: true })
    room.subscriptions.add({ listener: () => {}, onGap: () => { gaps += 100 }, active: false })
    reportGap(room, (error) => errors.push(error))
    assert.equal(gaps, 1, 'the active onGap ran once; the inactive one did not')
    assert.equal(errors.length, 1, 'the throw is reported once')
    assert.match(errors[0]?.message ?? '', /the onGap callback of topic "room" threw/, 'naming the topic')
  })
})
