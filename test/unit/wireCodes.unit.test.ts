import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toWireError } from '../../src/api/handler.ts';
import {
  API_ERROR_CODES,
  ApiError,
  RETRYABLE_CODES,
  type ApiErrorCode,
} from '../../src/api/wire.ts';
import {
  isRetryableCode,
  transportFailure,
  WIRE_CODE_RETRYABLE,
  wireCodeCarrier,
} from '../../src/api/wireCodes.ts';
import { DomainError, ObjectExistsError } from '../../src/domain/model/errors.ts';
import { UnderstudyError } from '../../src/domain/model/understudyError.ts';
import {
  NoRespondersError,
  RequestTooLargeError,
  TransportClosedError,
  TransportTimeoutError,
  TransportUnavailableError,
} from '../../src/ports/apiTransport.ts';
import { NotPrimaryError } from '../../src/ports/metadataService.ts';

/** Every wire code and its retryability, as docs/protocol.md promises them. */
const PINNED: Readonly<Record<ApiErrorCode, boolean>> = {
  INVALID_ARGUMENT: false,
  OBJECT_EXISTS: false,
  OBJECT_NOT_FOUND: false,
  SEGMENT_EXISTS: false,
  SEGMENT_NOT_FOUND: false,
  NO_SPACE: false,
  NOT_ENOUGH_NODES: false,
  INVALID_STATE: false,
  LEASED: false,
  REQUEST_EXPIRED: false,
  BAD_REQUEST: false,
  REQUEST_TOO_LARGE: false,
  NOT_PRIMARY: true,
  TIMEOUT: true,
  NO_RESPONDERS: true,
  UNAVAILABLE: true,
  CLOSED: false,
  INTERNAL: false,
};

describe('wire codes: retryability is stated once, by the error classes', () => {
  it('pins every wire code and whether it is retryable', () => {
    expect([...API_ERROR_CODES].sort()).toEqual(Object.keys(PINNED).sort());
    expect(WIRE_CODE_RETRYABLE).toEqual(PINNED);
    expect([...RETRYABLE_CODES].sort()).toEqual([
      'NOT_PRIMARY',
      'NO_RESPONDERS',
      'TIMEOUT',
      'UNAVAILABLE',
    ]);
    for (const code of API_ERROR_CODES) expect(isRetryableCode(code)).toBe(PINNED[code]);
  });

  it('docs/protocol.md says the same retryability for every code its table lists', () => {
    const rows = readFileSync('docs/protocol.md', 'utf8')
      .split('\n')
      .filter((line) => /^\| `[A-Z_]+`/.test(line));
    const documented = new Map<string, boolean>();
    for (const row of rows) {
      const [codes = '', retryable = ''] = row
        .split('|')
        .slice(1)
        .map((cell) => cell.trim());
      for (const [, code] of codes.matchAll(/`([A-Z_]+)`/g))
        documented.set(code!, retryable === 'yes');
    }
    expect(documented.size).toBeGreaterThanOrEqual(14);
    for (const [code, retryable] of documented) {
      expect([code, retryable]).toEqual([code, WIRE_CODE_RETRYABLE[code as ApiErrorCode]]);
    }
  });

  it('each code is carried by one UnderstudyError class, and its retryability is that class`s', () => {
    for (const code of API_ERROR_CODES) {
      const carrier = wireCodeCarrier(code);
      expect(carrier).toBeInstanceOf(UnderstudyError);
      expect(carrier.code).toBe(code);
      expect(carrier.retryable).toBe(WIRE_CODE_RETRYABLE[code]);
    }
  });

  it('the server answers a service error with its class`s code and retryability', () => {
    const notPrimary = toWireError(new NotPrimaryError('fenced', { leader: 'n2' }));
    expect(notPrimary).toMatchObject({
      code: 'NOT_PRIMARY',
      retryable: true,
      details: { leader: 'n2' },
    });
    const refused = toWireError(new DomainError('LEASED', 'leased', { field: 'key' }));
    expect(refused).toMatchObject({ code: 'LEASED', retryable: false, field: 'key' });
    const exists = toWireError(new ObjectExistsError('k', [], true));
    expect(exists).toMatchObject({ code: 'OBJECT_EXISTS', retryable: false });
  });

  it('the client turns each transport failure into its class`s code and retryability', () => {
    const cases: [Error, ApiErrorCode][] = [
      [new TransportTimeoutError('get', 10), 'TIMEOUT'],
      [new NoRespondersError('get'), 'NO_RESPONDERS'],
      [new TransportUnavailableError('get', 'reconnecting'), 'UNAVAILABLE'],
      [new RequestTooLargeError('get', 20, 10), 'REQUEST_TOO_LARGE'],
      [new TransportClosedError('get'), 'CLOSED'],
      [new Error('socket hang up'), 'UNAVAILABLE'],
    ];
    for (const [err, code] of cases) {
      expect(transportFailure(err)).toMatchObject({ code, retryable: PINNED[code] });
    }
    expect(transportFailure(new RequestTooLargeError('get', 20, 10))).toMatchObject({ limit: 10 });
  });

  it('an ApiError built without retryable takes its code`s; one read off the wire keeps what it says', () => {
    for (const code of API_ERROR_CODES) {
      expect(new ApiError({ code, message: '' }).retryable).toBe(PINNED[code]);
    }
    expect(new ApiError({ code: 'INTERNAL', message: '', retryable: true }).retryable).toBe(true);
  });

  it('every error class of the project extends UnderstudyError (none extends Error directly)', () => {
    const direct: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (path.endsWith('.ts') && /\bextends Error\b/.test(readFileSync(path, 'utf8')))
          direct.push(path);
      }
    };
    for (const room of ['src', 'machines']) walk(room);
    expect(direct).toEqual([join('src', 'domain', 'model', 'understudyError.ts')]);
  });
});
