/**
 * Reading a request target: its path in every RFC 9112 form, and its
 * topics and position, refusals as values.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { pathOf, readStreamQuery, type QueryLimits } from '../src/http/request.ts'

const limits: QueryLimits = { maxTopics: 3, maxTopicLength: 8, topicPrefix: '' }

describe('pathOf', () => {
  const cases: [string, string][] = [
    ['/events', '/events'],
    ['/events?topic=a', '/events'],
    ['/events#frag?topic=a', '/events'],
    ['/', '/'],
    ['http://host/events?topic=a', '/events'],
    ['https://host:8443/a/b?x', '/a/b'],
    ['http://host', '/'],
    ['http://host?topic=a/events', '/'],
    ['http://host#/events', '/'],
    ['host:443', 'host:443'],
    ['*', '*'],
  ]
  for (const [target, path] of cases) {
    it(`${target} → ${path}`, () => assert.equal(pathOf(target), path, `the path of the request target ${target}`))
  }
})

describe('readStreamQuery', () => {
  const accepted: [string, string[], string | undefined][] = [
    ['/?topic=a', ['a'], undefined],
    ['/?topic=a&topic=b', ['a', 'b'], undefined],
    ['/?topic=caf%C3%A9', ['café'], undefined],
    ['/?topic=a+b', ['a b'], undefined],
    ['/?x=1&topic=a&y', ['a'], undefined],
    ['/?topic=a&lastEventId=e-1&lastEventId=e-2', ['a'], 'e-1'],
    ['/?topic=a&lastEventId=%ZZ', ['a'], '%ZZ'],
    ['/?%74opic=b&topic=a', ['a'], undefined],
    ['/?topic=a#topic=b', ['a'], undefined],
    ['http://host/events?topic=a', ['a'], undefined],
  ]
  for (const [target, topics, lastEventId] of accepted) {
    it(`reads ${target}`, () => assert.deepEqual(readStreamQuery(target, limits), { topics, lastEventId }, `the topics and lastEventId read from ${target}`))
  }

  const refused: [string, number, RegExp][] = [
    ['/', 400, /Missing "topic"/],
    ['/?topic=', 400, /cannot be empty/],
    ['/?topic=a&topic=a', 400, /Repeated/],
    ['/?topic=a&topic=b&topic=c&topic=d', 400, /maxTopics/],
    ['/?topic=%E0%A4%A', 400, /percent-encoding/],
    ['/?topic=%FF', 400, /percent-encoding/],
    ['/?topic=a%0Ab', 400, /control characters/],
    ['/?topic=123456789', 414, /maxTopicLength/],
    [`/?topic=${'%61'.repeat(80)}`, 414, /maxTopicLength/],
    [`/?pad=${'x'.repeat(9000)}&topic=a`, 414, /request target/],
    ['/events#x?topic=a', 400, /Missing "topic"/],
  ]
  for (const [target, status, message] of refused) {
    it(`refuses ${target.slice(0, 60)} with ${status}`, () => {
      const answer = readStreamQuery(target, limits)
      assert.ok('status' in answer, JSON.stringify(answer))
      assert.equal(answer.status, status, `the refusal's status: ${JSON.stringify(answer)}`)
      assert.match(answer.message, message, `the refusal's message names the fault: ${answer.message}`)
    })
  }

  it('refuses with 403 a topic outside the prefix', () => {
    assert.deepEqual(readStreamQuery('/?topic=app:a&topic=other', { ...limits, topicPrefix: 'app:' }), { status: 403, message: 'Forbidden: the topic "other" does not start with the handler\'s topicPrefix "app:"' }, 'a topic outside topicPrefix is refused with 403, naming the topic and the prefix')
  })
})
