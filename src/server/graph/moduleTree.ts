/**
 * The module tree of any model: tensors grouped by the dotted prefixes of their names
 * (`model.layers.3.mlp.up_proj.weight` → model › layers › 3 › mlp › up_proj › weight),
 * with the bytes, parameters and tensors below each group. Single-child chains are kept
 * as they are, so that the tree matches the names users see.
 */
import type { ModuleGroup, ModuleTree } from '../../shared/graph';
import { MAX_GROUP_DEPTH } from '../../shared/limits';
import type { TensorInfo } from '../../shared/model';

/** The parts of a tensor name; past MAX_GROUP_DEPTH the rest stays in the last part. */
export function nameParts(name: string): string[] {
  const parts = name.split('.').filter((part) => part !== '');
  if (parts.length === 0) return [name];
  if (parts.length > MAX_GROUP_DEPTH) {
    const kept = parts.slice(0, MAX_GROUP_DEPTH - 1);
    kept.push(parts.slice(MAX_GROUP_DEPTH - 1).join('.'));
    return kept;
  }
  return parts;
}

type MutableGroup = {
  -readonly [K in keyof ModuleGroup]: ModuleGroup[K];
};

export function buildModuleTree(tensors: readonly TensorInfo[]): ModuleTree {
  const groups: MutableGroup[] = [
    { id: 0, parent: -1, label: '', path: '', bytes: 0, params: 0, tensorCount: 0 },
  ];
  const children = new Map<number, Map<string, number>>();
  for (const info of tensors) {
    const parts = nameParts(info.name);
    const chain: number[] = [0];
    let group = 0;
    parts.forEach((part, i) => {
      const leaf = i === parts.length - 1;
      let byLabel = children.get(group);
      if (!byLabel) children.set(group, (byLabel = new Map()));
      // A tensor named like a module (`a.b` beside `a.b.c`) gets its own leaf.
      const key = leaf ? `\u0000${part}` : part;
      let child = byLabel.get(key);
      if (child === undefined || leaf) {
        child = groups.length;
        const path = leaf ? info.name : parts.slice(0, i + 1).join('.');
        groups.push({
          id: child,
          parent: group,
          label: part,
          path,
          bytes: 0,
          params: 0,
          tensorCount: 0,
          ...(leaf ? { tensor: info.index } : {}),
        });
        byLabel.set(key, child);
      }
      group = child;
      chain.push(group);
    });
    for (const id of chain) {
      const g = groups[id]!;
      g.bytes += info.byteLength;
      g.params += info.parameterCount;
      g.tensorCount += 1;
    }
  }
  return { groups };
}
