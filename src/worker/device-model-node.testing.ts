/**
 * For tests: device models in real worker threads (device-model-node.ts, bundled as the CLI
 * bundles it). Call inside a describe block or at a test file's top level: the bundle is
 * built before the tests run, and every worker started is closed after them.
 */
import { afterAll, beforeAll } from 'vitest';
import { bundle } from '../../bin/bundle.mjs';
import { nodeDeviceModelConnector } from './device-model-spawn.ts';
import type { DeviceModelConnector, DeviceModelLink } from '../emulator/bus/device-paths.ts';

/** A connector that starts a device-model worker per call; valid once the tests run. */
export function workerDeviceModels(): DeviceModelConnector {
  let spawn: DeviceModelConnector | null = null;
  const links: DeviceModelLink[] = [];
  beforeAll(async () => {
    spawn = nodeDeviceModelConnector(await bundle('src/worker/device-model-node.ts'));
  }, 60_000);
  afterAll(() => {
    for (const l of links) l.close();
  });
  return () => {
    if (spawn === null) throw new Error('workerDeviceModels(): the connector is used before the tests run');
    const link = spawn();
    links.push(link);
    return link;
  };
}
