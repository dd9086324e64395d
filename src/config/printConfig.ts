/**
 * `understudy node --print-config`: the settings as a config file holds them, so that
 * `--print-config > n1.json` then `--config n1.json` runs with the same settings. Durations are
 * written with their unit (`"5s"`: a bare number is refused as ambiguous); secrets are left out
 * (they come from the environment or a file, and a mask would be read back as the secret).
 */
import { redact } from './credentials.ts';
import type { SettingTable } from './settings.ts';

/** What to print: the file's JSON, and the secrets that were set and left out. */
export interface PrintedConfig {
  readonly file: Record<string, unknown>;
  readonly omitted: readonly string[];
}

/** The settings `values` of `table` as a config file writes them. */
export function configFileOf(
  table: SettingTable,
  values: Readonly<Record<string, unknown>>,
): PrintedConfig {
  const redacted = redact(values);
  const file: Record<string, unknown> = {};
  const omitted: string[] = [];
  for (const [key, setting] of Object.entries(table)) {
    const value = values[key];
    if (value === undefined) continue;
    // A secret, or a value with one in it (a URL with a password): masked, so left out.
    if (setting.secret || JSON.stringify(redacted[key]) !== JSON.stringify(value)) {
      omitted.push(key);
      continue;
    }
    file[key] = setting.type.placeholder === '<duration>' ? setting.type.show(value) : value;
  }
  return { file, omitted };
}
