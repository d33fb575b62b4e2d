import type { Broker } from '../../broker/broker.js'
import type { Publisher } from './publisher.js'

/**
 * The broker of a process that only publishes (`createRedisBroker` without
 * a `subscriber`): `publish` as usual, on the one connection; what needs
 * the subscriber connection throws, naming the option.
 * @internal
 */
export function publishOnly(publishing: Publisher): Broker {
  return {
    publish: (topic, payload) => publishing.publish(topic, payload),
    subscribe: (topic) => needsSubscriber(`subscribe to topic "${topic}"`),
    position: (topic) => needsSubscriber(`read the position of topic "${topic}"`),
    replay: (topic) => needsSubscriber(`replay topic "${topic}"`),
  }
}

function needsSubscriber(what: string): never {
  throw new TypeError(`createRedisBroker: cannot ${what}: this broker has no subscriber, so it can only publish. Pass the subscriber option, a connection of its own: createRedisBroker({ publisher, subscriber: await publisher.duplicate().connect() }) with node-redis, or subscriber: new Redis(url) with ioredis`)
}
