/**
 * Power, reset, pause/resume, Ctrl+Alt+Del, the RAM size, the loading progress and the
 * speed readout (MIPS, guest time against host time).
 */
import { usePage } from '../store.ts';
import { MachineOptions } from './MachineOptions.tsx';

const MEMORY_CHOICES = [32, 64, 128, 256, 512];

export function Controls() {
  const phase = usePage((s) => s.phase);
  const status = usePage((s) => s.status);
  const progress = usePage((s) => s.progress);
  const memoryMiB = usePage((s) => s.memoryMiB);
  const share = usePage((s) => s.share);
  const manifestReady = usePage((s) => s.manifest.kind === 'ready');
  const resets = usePage((s) => s.resets);
  const lastReset = usePage((s) => s.lastReset);
  const { powerOn, powerOff, reset, pause, resume, ctrlAltDel, setMemory } = usePage.getState();
  const on = phase === 'running' || phase === 'paused' || phase === 'stopped';
  return (
    <section className="controls" aria-label="Machine controls">
      <button type="button" className="power" onClick={() => (on || phase === 'loading' ? powerOff() : void powerOn())} data-testid="power" disabled={!manifestReady && !on && phase !== 'loading'}>
        {on || phase === 'loading' ? 'Power off' : 'Power on'}
      </button>
      <button type="button" onClick={reset} disabled={!on} data-testid="reset">Reset</button>
      <button type="button" onClick={phase === 'paused' ? resume : pause} disabled={phase !== 'running' && phase !== 'paused'} data-testid="pause">
        {phase === 'paused' ? 'Resume' : 'Pause'}
      </button>
      <button type="button" onClick={ctrlAltDel} disabled={phase !== 'running'} title="Send Ctrl+Alt+Del to the guest's keyboard">Ctrl+Alt+Del</button>
      <label className="memory">
        RAM{' '}
        <select value={memoryMiB ?? ''} onChange={(e) => setMemory(e.target.value ? Number(e.target.value) : undefined)} disabled={on} aria-label="Guest RAM">
          <option value="">as the guest asks</option>
          {MEMORY_CHOICES.map((m) => <option key={m} value={m}>{m} MiB</option>)}
        </select>
      </label>
      <MachineOptions disabled={on} />
      <span className={`phase phase-${phase}`} data-testid="phase" role="status" title={lastReset ? `last reset: ${lastReset}` : undefined}>
        {phase === 'loading' ? 'loading' : phase}
        {share && phase !== 'off' ? `: ${share.label}` : ''}
        {resets > 0 && phase !== 'off' ? ` (reset ${resets}×)` : ''}
      </span>
      {progress && (
        <span className="progress">
          <label>
            {progress.what}{' '}
            <progress value={progress.loaded} max={progress.total || undefined} data-testid="load-progress" />{' '}
            {(progress.loaded / (1 << 20)).toFixed(1)} / {(progress.total / (1 << 20)).toFixed(1)} MiB
          </label>
        </span>
      )}
      {status && status.phase !== 'off' && (
        <span className="speed" data-testid="speed" data-mips={status.mips} data-busy-mips={status.busyMips} data-instructions={status.instructions} data-real-seconds={status.realSeconds} data-virtual-seconds={status.virtualSeconds} title="Instructions per second over the last half second; in brackets while the CPU was not idle">
          {status.mips.toFixed(1)} MIPS ({status.busyMips.toFixed(1)} busy) · guest time {fmtTime(status.virtualSeconds)} / host time {fmtTime(status.realSeconds)} · {(status.instructions / 1e6).toFixed(0)} M instructions
        </span>
      )}
    </section>
  );
}

function fmtTime(s: number): string {
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${(s % 60).toFixed(0).padStart(2, '0')} s`;
}
