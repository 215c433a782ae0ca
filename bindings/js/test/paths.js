// Where the project's shared test data lives, from the package.
import { fileURLToPath } from 'node:url';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const PACKAGE = fileURLToPath(new URL('../', import.meta.url));

/** The JSON files of a folder of the repository, as [path, parsed]. */
export function jsonFiles(dir) {
  const full = join(ROOT, dir);
  return readdirSync(full)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => [join(full, f), JSON.parse(readFileSync(join(full, f), 'utf8'))]);
}

export function readJson(path) {
  return JSON.parse(readFileSync(join(ROOT, path), 'utf8'));
}
