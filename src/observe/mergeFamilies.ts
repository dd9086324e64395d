import type { Labels, MetricFamily } from './prometheusText.ts';

/**
 * The metric families of several sources (a process's group members) as one exposition: each
 * source's samples get its `labels` (`group="2"`), and families of one name are merged into one
 * (the text format allows one HELP and TYPE per name). The first source's HELP and TYPE win.
 */
export function mergeFamilies(
  sources: readonly { readonly labels: Labels; readonly families: readonly MetricFamily[] }[],
): MetricFamily[] {
  const byName = new Map<string, MetricFamily>();
  for (const { labels, families } of sources) {
    for (const family of families) {
      const samples = family.samples.map((s) => ({ ...s, labels: { ...s.labels, ...labels } }));
      const seen = byName.get(family.name);
      byName.set(
        family.name,
        (seen === undefined
          ? { ...family, samples }
          : { ...seen, samples: [...seen.samples, ...samples] }) as MetricFamily,
      );
    }
  }
  return [...byName.values()];
}
