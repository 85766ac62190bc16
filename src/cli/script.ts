/**
 * The expect-like script of `--until` and `--send`, independent of the machine so it can
 * be tested alone. Output from the guest is fed in; when the current step is an
 * `until` whose pattern matches the output seen since the previous match, the script
 * advances; `send` steps hand their text to `type` and `do` steps their monitor
 * command to `command` as soon as they are reached.
 */
import type { ScriptStep } from './args.ts';

/** Output kept for matching: enough for any sane pattern, bounded so a chatty guest costs nothing. */
const WINDOW = 64 * 1024;

export class Script {
  private index = 0;
  private seen = '';
  private readonly untilCount: number;
  private untilsMatched = 0;

  constructor(
    private readonly steps: readonly ScriptStep[],
    private readonly type: (text: string) => void,
    private readonly command: (command: string) => void = () => {},
  ) {
    this.untilCount = steps.filter((s) => s.kind === 'until').length;
  }

  /** Run the sends at the head of the script (call once the machine is ready for input). */
  start(): void {
    this.advance();
  }

  /** True once there is at least one `--until` and the last one has matched. */
  get done(): boolean {
    return this.untilCount > 0 && this.untilsMatched === this.untilCount;
  }

  /** The pattern being waited for, for the timeout message. */
  get waitingFor(): string | undefined {
    const step = this.steps[this.index];
    return step?.kind === 'until' ? step.source : undefined;
  }

  /** Feed guest output (serial or debugcon), already decoded as Latin-1 text. */
  feed(text: string): void {
    if (this.index >= this.steps.length) return;
    this.seen += text;
    if (this.seen.length > WINDOW) this.seen = this.seen.slice(this.seen.length - WINDOW);
    this.advance();
  }

  private advance(): void {
    while (this.index < this.steps.length) {
      const step = this.steps[this.index];
      if (step.kind === 'send') {
        this.index++;
        this.type(step.text);
        continue;
      }
      if (step.kind === 'do') {
        this.index++;
        this.command(step.command);
        continue;
      }
      const m = step.pattern.exec(this.seen);
      if (!m) return;
      // What follows the match is what the next pattern may match: a prompt printed
      // together with the answer must not be consumed by the earlier step.
      this.seen = this.seen.slice(m.index + m[0].length);
      this.index++;
      this.untilsMatched++;
    }
  }
}
