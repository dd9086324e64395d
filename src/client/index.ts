export {
  objectExistsDetails,
  ApiError,
  type ApiErrorCode,
  type Ack,
  type BackoffOptions,
  type BatchResult,
  type ClientOptions,
  type FailoverEvent,
  type ObjectExistsDetails,
  type Placement,
  type PutStartItem,
  type UnderstudyClient,
} from './client.ts';
export { createClient } from './nats.ts';
export type { ObjectRecord, Replica } from '../domain/model/types.ts';
