import { invalidArgument, type DomainError } from './errors.ts';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** UTF-8 length of a well-formed string, without encoding it. */
export function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * A non-empty, well-formed (no lone surrogates) string of at most `maxBytes` UTF-8 bytes,
 * or the error naming `field` and the limit.
 */
export function checkString(
  value: unknown,
  field: string,
  maxBytes: number,
): DomainError | undefined {
  if (typeof value !== 'string')
    return invalidArgument(field, `must be a string, got ${typeof value}`);
  if (value.length === 0)
    return invalidArgument(field, 'must not be empty', `1..${maxBytes} UTF-8 bytes`);
  if (LONE_SURROGATE.test(value)) return invalidArgument(field, 'is not well-formed Unicode');
  const bytes = utf8Length(value);
  if (bytes > maxBytes) return invalidArgument(field, `is ${bytes} UTF-8 bytes long`, maxBytes);
  return undefined;
}

/** An integer in `min..max` (a safe integer), or the error naming `field` and the limit. */
export function checkInteger(
  value: unknown,
  field: string,
  min: number,
  max: number,
): DomainError | undefined {
  if (typeof value !== 'number')
    return invalidArgument(field, `must be a number, got ${typeof value}`);
  if (!Number.isSafeInteger(value))
    return invalidArgument(field, `must be an integer, got ${value}`, max);
  if (value < min) return invalidArgument(field, `must be at least ${min}, got ${value}`, min);
  if (value > max) return invalidArgument(field, `must be at most ${max}, got ${value}`, max);
  return undefined;
}

/** True when `value` is a non-null, non-array object. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
