// Records how to undo each step of an operation, and undoes them in reverse order on failure.
export class UndoStack {
  private readonly steps: { what: string; undo: () => Promise<void> }[] = [];

  push(what: string, undo: () => Promise<void>): void {
    this.steps.push({ what, undo });
  }

  /** Runs every undo, newest first; collects failures instead of stopping at the first. */
  async unwind(): Promise<string[]> {
    const failures: string[] = [];
    while (this.steps.length > 0) {
      const step = this.steps.pop();
      if (step === undefined) break;
      try {
        await step.undo();
      } catch (err) {
        failures.push(`undo ${step.what}: ${(err as Error).message}`);
      }
    }
    return failures;
  }

  /** Forget the steps: the operation succeeded. */
  commit(): void {
    this.steps.length = 0;
  }
}
