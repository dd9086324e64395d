import type { MetadataEvent } from '../model/types.ts';

/** The entry key of an event: the object key, the segment id, or '' (EVICTION, EPOCH). */
export function eventKey(event: MetadataEvent): string {
  switch (event.op) {
    case 'MOUNT_SEGMENT':
    case 'UNMOUNT_SEGMENT':
      return event.segmentId;
    case 'PUT_START':
    case 'PUT_END':
    case 'PUT_REVOKE':
    case 'REMOVE':
      return event.key;
    case 'EVICTION':
    case 'EPOCH':
      return '';
  }
}
