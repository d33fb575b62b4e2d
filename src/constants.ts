/** Defaults for {@link HandlerOptions}; DESIGN.md's table is the source of truth. */
export const DEFAULT_HEARTBEAT_MS = 15_000
export const DEFAULT_RETRY_MS = 3_000
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024
export const DEFAULT_HISTORY = 1000
export const DEFAULT_HISTORY_BYTES = 1024 * 1024
export const DEFAULT_LINGER_MS = 30_000
export const DEFAULT_MAX_TOPIC_LENGTH = 256

/** The SSE event names patchwire writes. */
export const EVENT_PATCH = 'patch'
export const EVENT_RESET = 'reset'
export const EVENT_READY = 'ready'
