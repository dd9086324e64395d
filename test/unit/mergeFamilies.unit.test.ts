// The /metrics of a process hosting several group members: one HELP and TYPE per name, every
// series with its group label.
import { describe, expect, it } from 'vitest';
import { mergeFamilies } from '../../src/observe/mergeFamilies.ts';
import { renderPrometheus, type MetricFamily } from '../../src/observe/prometheusText.ts';

const familiesOf = (applied: number): MetricFamily[] => [
  { name: 'x_applied', help: 'applied', type: 'gauge', samples: [{ value: applied }] },
  {
    name: 'x_state',
    help: 'state',
    type: 'gauge',
    samples: [{ labels: { state: 'primary' }, value: applied > 5 ? 1 : 0 }],
  },
];

describe('mergeFamilies', () => {
  it('renders each name once, every sample labelled with its group', () => {
    const text = renderPrometheus(
      mergeFamilies([
        { labels: { group: '0' }, families: familiesOf(3) },
        { labels: { group: '1' }, families: familiesOf(9) },
      ]),
    );
    expect(text.match(/# TYPE x_applied/g)).toHaveLength(1);
    expect(text).toContain('x_applied{group="0"} 3');
    expect(text).toContain('x_applied{group="1"} 9');
    expect(text).toContain('x_state{state="primary",group="0"} 0');
    expect(text).toContain('x_state{state="primary",group="1"} 1');
  });
});
