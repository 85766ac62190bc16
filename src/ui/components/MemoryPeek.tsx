/**
 * Guest RAM, read live by the page from the SharedArrayBuffer the machine runs on (no
 * copy through the worker): 256 bytes from an address the user types, on the page's tick.
 */
import { useEffect, useState } from 'react';
import { usePage } from '../store.ts';
import { onTick } from '../tick.ts';

const BYTES = 256;
const hex = (v: number, n: number) => v.toString(16).padStart(n, '0');

export function MemoryPeek() {
  const ram = usePage((s) => s.share?.ram ?? null);
  const [text, setText] = useState('400');
  const [dump, setDump] = useState('');
  const address = parseInt(text, 16);
  const valid = Number.isFinite(address) && address >= 0;
  useEffect(() => {
    if (!ram || !valid) return;
    const view = new Uint8Array(ram);
    const draw = () => {
      if (address + BYTES > view.length) {
        setDump(`RAM ends at 0x${hex(view.length, 8)}.`);
        return;
      }
      const lines: string[] = [];
      for (let row = 0; row < BYTES; row += 16) {
        const bytes = view.subarray(address + row, address + row + 16);
        const ascii = Array.from(bytes, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
        lines.push(`${hex(address + row, 8)}  ${Array.from(bytes, (b) => hex(b, 2)).join(' ')}  ${ascii}`);
      }
      setDump(lines.join('\n'));
    };
    draw();
    return onTick(draw);
  }, [ram, address, valid]);
  if (!ram) return null;
  return (
    <div className="memory-peek">
      <h3>Guest RAM</h3>
      <label>
        physical address (hex) 0x
        <input type="text" value={text} onChange={(e) => setText(e.target.value.replace(/^0x/i, ''))} size={10} aria-label="Physical address to show, in hexadecimal" spellCheck={false} />
      </label>
      <pre data-testid="memory-dump" aria-label="Guest RAM bytes">{valid ? dump : 'Type a hexadecimal address.'}</pre>
    </div>
  );
}
