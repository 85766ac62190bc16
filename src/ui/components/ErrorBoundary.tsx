/**
 * A panel that throws while rendering shows what went wrong in its place instead of
 * taking the whole page down: the page never goes blank.
 */
import { Component, type ReactNode } from 'react';

export class ErrorBoundary extends Component<{ name: string; children: ReactNode }, { error: Error | null }> {
  override state: { error: Error | null } = { error: null };

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  override render() {
    const { error } = this.state;
    if (!error) return this.props.children;
    return (
      <section className="panel" role="alert">
        <h2>{this.props.name}</h2>
        <p className="error">This part of the page failed: {error.message}</p>
        <p className="hint">The machine keeps running. Try again, or reload the page.</p>
        <button type="button" onClick={() => this.setState({ error: null })}>Try again</button>
      </section>
    );
  }
}
