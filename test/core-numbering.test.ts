/**
 * Where a handler's event ids come from (src/core/numbering.ts): from a
 * broker that keeps history, or made by the handler itself, with what each
 * answers a resume.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Broker } from '../src/broker/broker.ts'
import { numberingOf } from '../src/core/numbering.ts'
import { Topic } from '../src/core/topic.ts'
import type { PatchwireError } from '../src/errors.ts'
import { createBroker } from '../src/index.ts'

const plainBroker: Broker = { publish: async () => undefined, subscribe: () => () => undefined }

describe('numberingOf', () => {
  describe('a broker with history', () => {
    it('takes the broker\'s ids: new above the topic\'s position, seen at or below it, invalid without one', () => {
      const numbering = numberingOf(createBroker(), () => undefined)
      const topic = new Topic('a')
      numbering.start(topic, 'e1-5')
      assert.deepEqual([topic.seq, topic.id], [5, 'e1-5'], 'the subscription starts at the broker position')
      assert.equal(numbering.take(topic, 'e1-7'), 'new', 'an id above the position is new')
      assert.deepEqual([topic.seq, topic.id], [7, 'e1-7'], 'and becomes the position')
      assert.equal(numbering.take(topic, 'e1-7'), 'seen', 'a redelivery is seen')
      assert.equal(numbering.take(topic, 'e1-3'), 'seen', 'an older id is seen')
      assert.equal(numbering.take(topic, undefined), 'invalid', 'no id is invalid')
      assert.equal(numbering.take(topic, 'not an id'), 'invalid', 'a malformed id is invalid')
      assert.equal(topic.seq, 7, 'neither moved the position')
    })

    it('refuses a start position that is not an event id', () => {
      const numbering = numberingOf(createBroker(), () => undefined)
      assert.throws(() => numbering.start(new Topic('a'), 42), /position for topic "a" is not an event id: 42/, 'a number is not an id')
    })

    it('replays from the broker, and resets with broker-gap when the broker fails', async () => {
      const errors: PatchwireError[] = []
      const failing: Broker = {
        ...plainBroker,
        position: () => 'e-0',
        replay: (topic) => (topic === 'sync' ? (() => { throw new Error('down') })() : Promise.reject(new Error('down'))),
      }
      const numbering = numberingOf(failing, (error) => errors.push(error))
      assert.deepEqual(numbering.replay(new Topic('sync'), 'e-1'), { reset: 'broker-gap' }, 'a throwing replay resets')
      assert.deepEqual(await numbering.replay(new Topic('async'), 'e-1'), { reset: 'broker-gap' }, 'a rejecting replay resets')
      assert.deepEqual(errors.map((error) => error.code), ['ERR_PATCHWIRE_BROKER', 'ERR_PATCHWIRE_BROKER'], 'each failure is reported')
    })

    it('knows how far a resumed stream has come from its id, and never positions it behind its topics', () => {
      const numbering = numberingOf(createBroker(), () => undefined)
      assert.equal(numbering.resumedTo('e1-9'), 9, 'the id\'s position')
      assert.equal(numbering.resumedTo('nope'), undefined, 'no position from a malformed id')
      const a = new Topic('a')
      const b = new Topic('b')
      numbering.start(a, 'e1-4')
      numbering.start(b, 'e1-6')
      assert.deepEqual(numbering.ready([a, b], 5, 'e1-5'), { seq: 6, id: 'e1-6' }, 'the furthest topic wins')
      assert.deepEqual(numbering.ready([a, b], 8, 'e1-8'), { seq: 8, id: 'e1-8' }, 'the stream\'s own frames win when further')
      assert.equal(numbering.gap(a), undefined, 'a gap leaves the broker\'s ids as they are')
    })
  })

  describe('a broker without history', () => {
    it('numbers messages itself, in one order over all topics', () => {
      const numbering = numberingOf(plainBroker, () => undefined)
      const a = new Topic('a')
      const b = new Topic('b')
      numbering.start(a, numbering.startPosition('a'))
      numbering.start(b, numbering.startPosition('b'))
      assert.equal(numbering.take(a, undefined), 'new', 'every message is new')
      assert.equal(numbering.take(b, 'ignored-1'), 'new', 'the broker\'s id is ignored')
      assert.ok(b.seq > a.seq, 'one order over topics')
      const epoch = a.id.split('-')[0]
      assert.equal(b.id, `${epoch}-${b.seq}`, 'ids are <epoch>-<seq>')
    })

    it('answers a resume exactly only when nothing was missed', () => {
      const numbering = numberingOf(plainBroker, () => undefined)
      const topic = new Topic('a')
      numbering.start(topic, undefined)
      const start = topic.id
      assert.deepEqual(numbering.replay(topic, start), { frames: [] }, 'nothing missed since the start')
      numbering.take(topic, undefined)
      assert.deepEqual(numbering.replay(topic, start), { reset: 'history-exceeded' }, 'a missed message resets')
      assert.deepEqual(numbering.replay(topic, topic.id), { frames: [] }, 'from the latest id, nothing is missed')
      assert.deepEqual(numbering.replay(topic, 'x'), { reset: 'malformed-id' }, 'a malformed id')
      assert.deepEqual(numbering.replay(topic, 'other-1'), { reset: 'foreign-id' }, 'another epoch')
      const epoch = topic.id.split('-')[0]
      assert.deepEqual(numbering.replay(topic, `${epoch}-999`), { reset: 'foreign-id' }, 'a position not reached yet')
      assert.equal(numbering.resumedTo(topic.id), undefined, 'the ids say nothing of what a stream has')
    })

    it('after a gap, resets a resume from before it as broker-gap and gives the reset its new id', () => {
      const numbering = numberingOf(plainBroker, () => undefined)
      const topic = new Topic('a')
      numbering.start(topic, undefined)
      const before = topic.id
      const id = numbering.gap(topic)
      assert.equal(id, topic.id, 'the reset carries the topic\'s new position')
      assert.notEqual(id, before, 'a new position')
      assert.deepEqual(numbering.replay(topic, before), { reset: 'broker-gap' }, 'from before the gap')
      assert.deepEqual(numbering.ready([topic], -1, ''), { seq: topic.seq, id: topic.id }, 'ready is the handler\'s latest id')
    })
  })
})
