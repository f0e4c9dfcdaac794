/**
 * The worker image, checked without Docker: what the Dockerfile runs is what the ECS task runs,
 * and everything the worker imports is in the build context (.dockerignore allow-list) and in
 * the production dependencies that `npm ci --omit=dev` installs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../infra/calldata-function.ts';
import { AWS_BASE, logicalId, synth } from './stack-fixture.ts';

const dockerfile = readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8');
const dockerignore = readFileSync(join(PROJECT_ROOT, '.dockerignore'), 'utf8');
const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; peerDependencies?: Record<string, string> };

/** Every file reachable from the entries through relative imports, and every package imported. */
function importClosure(entries: string[]): { files: string[]; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = entries.map((e) => resolve(PROJECT_ROOT, e));
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (files.has(file)) continue;
    files.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/(?:^|\n)\s*(import|export)\s(type\s)?[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|new URL\(\s*['"](\.[^'"]+\.ts)['"]/g)) {
      if (match[2]) continue; // type-only imports are erased at run time
      const spec = (match[3] ?? match[4] ?? match[5]) as string;
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec);
        if (existsSync(target)) queue.push(target);
      } else if (!spec.startsWith('node:') && !builtinModules.includes(spec)) {
        packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string));
      }
    }
  }
  return { files: [...files].map((f) => relative(PROJECT_ROOT, f)), packages };
}

describe('worker image', { timeout: 60_000 }, () => {
  it('builds on node:24-slim and runs as the unprivileged node user', () => {
    // Prepare / Act
    const bases = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);

    // Assess
    expect(bases).toEqual(['node:24-slim', 'node:24-slim']);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
  });

  it('runs the same command locally as the ECS task definition does', () => {
    // Prepare
    const cmd = JSON.parse(/^CMD\s+(\[.*\])$/m.exec(dockerfile)?.[1] ?? '[]') as string[];
    const { template } = synth({ ...AWS_BASE });

    // Act
    const task = template.toJSON().Resources[logicalId(template, 'AWS::ECS::TaskDefinition', 'WorkerTask')] as { Properties: { ContainerDefinitions: { Command: string[] }[] } };

    // Assess
    expect(cmd).toEqual(['node', 'worker/main.ts', 'start']);
    expect(task.Properties.ContainerDefinitions[0]?.Command).toEqual(cmd);
  });

  it('has every file the worker imports in the build context and every package it imports in the production dependencies', () => {
    // Prepare
    const allowed = dockerignore
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('!') && l.endsWith('/**'))
      .map((l) => l.slice(1, -2));

    // Act
    const { files, packages } = importClosure(['worker/main.ts', 'worker/agent.ts']);

    // Assess
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) expect(allowed.some((dir) => file.startsWith(dir)), file).toBe(true);
    // `npm ci --omit=dev` installs peer dependencies too (@livekit/agents is the user's own in the package).
    const production = [...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies ?? {})];
    for (const name of packages) expect(production, name).toContain(name);
    for (const dir of allowed) expect(dockerfile).toContain(`COPY ${dir.replace(/\/$/, '')} ./${dir.replace(/\/$/, '')}`);
  });
});
