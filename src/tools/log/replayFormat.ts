/** The text and JSON renderings of `understudy replay`'s results. */
import { entryToJSON } from '../../domain/log/eventCodec.ts';
import type { ObjectRecord } from '../../domain/model/types.ts';
import type { HistoryItem } from './replayLog.ts';
import type { StateSummary } from './stateSummary.ts';

/** `seq 12  epoch 5  2026-11-25T21:54:21.123Z  PUT_START  {"op":"PUT_START",...}`. */
export function formatHistoryLine(item: HistoryItem): string {
  const time = new Date(item.entry.ts).toISOString();
  return `seq ${item.entry.seq}  epoch ${item.entry.epoch}  ${time}  ${item.entry.op}  ${JSON.stringify(item.logged.event)}`;
}

/** A history entry as one JSON object: the readable entry, and the key's record after it. */
export function historyJson(item: HistoryItem): Record<string, unknown> {
  return {
    ...entryToJSON(item.entry),
    ...(item.record !== undefined ? { record: item.record } : {}),
  };
}

function formatRecord(key: string, record: ObjectRecord | null, seq: number): string[] {
  if (record === null) return [`key ${JSON.stringify(key)} at seq ${seq}: absent`];
  return [
    `key ${JSON.stringify(key)} at seq ${seq}: size ${record.size}, last changed at seq ${record.lastSeq}`,
    ...record.replicas.map(
      (r) =>
        `  replica ${r.segmentId} (node ${r.nodeId}) offset ${r.offset} length ${r.length} ${r.status}`,
    ),
  ];
}

/** The state summary (and the key's record) as text lines. */
export function formatSummary(
  summary: StateSummary,
  key?: string,
  record?: ObjectRecord | null,
): string {
  const lines = [
    `state at seq ${summary.seq}${summary.time !== null ? ` (${summary.time})` : ''}${summary.approximate ? ' - APPROXIMATE: bad entries were skipped' : ''}`,
    `epoch     ${summary.epoch}${summary.epochNodeId !== '' ? ` (primary ${summary.epochNodeId})` : ''}`,
    `objects   ${summary.objectCount}`,
    `segments  ${summary.segments.length}, capacity ${summary.capacity} bytes, used ${summary.used}`,
    ...summary.segments.map((s) => `  ${s.id} (node ${s.nodeId}) used ${s.used} / ${s.size} bytes`),
    `digest    ${summary.digest}`,
  ];
  if (key !== undefined && record !== undefined)
    lines.push(...formatRecord(key, record, summary.seq));
  return `${lines.join('\n')}\n`;
}
