/** What the user must know, in plain words with what to do: failures as alerts, the rest as status. */
import { usePage } from '../store.ts';

export function Notices() {
  const notices = usePage((s) => s.notices);
  const dismiss = usePage((s) => s.dismiss);
  if (notices.length === 0) return null;
  return (
    <div className="notices" data-testid="notices">
      {notices.map((n) => (
        <div key={n.id} className={`notice ${n.kind}`} role={n.kind === 'error' ? 'alert' : 'status'} data-testid={`notice-${n.kind}`}>
          <p>{n.message}</p>
          {n.hint && <p className="hint">{n.hint}</p>}
          <button type="button" onClick={() => dismiss(n.id)} aria-label="Dismiss this message">×</button>
        </div>
      ))}
    </div>
  );
}
