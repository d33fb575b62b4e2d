export { applyPatch, PatchError } from './patch.js'
export { diff } from './diff.js'
export type { DiffOptions } from './diff.js'
export type { ApplyPatchOptions } from './patch.js'
export { subscribe } from './subscribe.js'
export type {
  EventSourceConstructor,
  EventSourceLike,
  PatchMeta,
  SnapshotMeta,
  SubscribeOptions,
  Subscription,
  SubscriptionState,
} from './subscribe.js'
export { PatchwireError } from '../errors.js'
export type { PatchwireErrorCode } from '../errors.js'
export type { PatchOp, PatchOpName } from '../patch-op.js'
export type { ResetReason } from '../protocol/reset-reason.js'
