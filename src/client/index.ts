export {
  objectExistsDetails,
  ApiError,
  type ApiErrorCode,
  type Ack,
  type BatchResult,
  type ClientOptions,
  type ObjectExistsDetails,
  type Placement,
  type PutStartItem,
  type UnderstudyClient,
} from './client.ts';
export type { BackoffOptions, FailoverEvent } from './retryingCaller.ts';
export { createClient } from './nats.ts';
export { GroupFanOutError, type GroupsAck } from './groupedClient.ts';
export type { ObjectRecord, Replica } from '../domain/model/types.ts';
