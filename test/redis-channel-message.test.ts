/**
 * How patchwire/redis reads the messages on a topic's channel,
 * `<epoch>:<seq>:<prev>:<payload>`: what it publishes is read back exactly,
 * and anything else (another publisher's messages) is not taken for one.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseChannelMessage } from '../src/adapters/redis/channel-message.ts'

describe('parseChannelMessage (patchwire/redis)', () => {
  it('reads the epoch, the position, the previous position and the payload, colons and all', () => {
    const read: Array<[string, ReturnType<typeof parseChannelMessage>]> = [
      ['e1:42:41:[1]', { epoch: 'e1', seq: 42, prev: 41, payload: '[1]' }],
      ['e1:42::[1]', { epoch: 'e1', seq: 42, prev: undefined, payload: '[1]' }],
      ['0:0:0:', { epoch: '0', seq: 0, prev: 0, payload: '' }],
      ['abcdefghijklmnop:9007199254740991:9007199254740990:a:b:c', { epoch: 'abcdefghijklmnop', seq: 9007199254740991, prev: 9007199254740990, payload: 'a:b:c' }],
      ['2tgrnbu0t95f0:1796406468669092:1796406468669091:[["add","/a","ü\r\n"]]', { epoch: '2tgrnbu0t95f0', seq: 1796406468669092, prev: 1796406468669091, payload: '[["add","/a","ü\r\n"]]' }],
    ]
    for (const [message, expected] of read) assert.deepEqual(parseChannelMessage(message), expected, message)
  })

  it('takes nothing else for a message of the broker', () => {
    const foreign = [
      '', 'hello', '[1]', ':1:0:[1]', 'e1:', 'e1:1', 'e1:1:', 'e1:1:0', 'e1::0:[1]',
      'E1:1:0:[1]', 'e-1:1:0:[1]', 'abcdefghijklmnopq:1:0:[1]',
      'e1:01:0:[1]', 'e1:1:00:[1]', 'e1:1a:0:[1]', 'e1:1:0a:[1]', 'e1:-1:0:[1]',
      'e1:12345678901234567:0:[1]', 'e1:1:12345678901234567:[1]',
      'e1:9007199254740992:0:[1]', 'e1:1:9999999999999999:[1]',
    ]
    for (const message of foreign) assert.equal(parseChannelMessage(message), undefined, JSON.stringify(message))
  })

  it('reads only the head of a large message', () => {
    const payload = 'x'.repeat(4 * 1024 * 1024)
    assert.equal(parseChannelMessage(`e1:7:6:${payload}`)?.payload.length, payload.length, 'the payload whole')
    assert.equal(parseChannelMessage(payload), undefined, 'a large message with no head is refused')
  })
})
