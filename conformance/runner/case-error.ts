/**
 * A failure as plain data: what a result carries instead of the thrown
 * value, so that results survive `JSON.stringify`, `structuredClone` and
 * worker boundaries (an `Error`'s message and stack are not own enumerable
 * properties and would be dropped).
 */
export interface CaseError {
  /** The error's class name (`ConformanceAssertionError`, `TypeError`, ...). */
  name: string;
  /** Its stable code, when it has one (`KODE_VALIDATION`, ...). */
  code?: string;
  message: string;
  stack?: string;
}

/** The plain-data form of anything a case threw. */
export function toCaseError(thrown: unknown): CaseError {
  if (thrown instanceof Error) {
    const code = (thrown as { code?: unknown }).code;
    return {
      name: thrown.name,
      ...(typeof code === 'string' ? { code } : {}),
      message: thrown.message,
      ...(thrown.stack ? { stack: thrown.stack } : {}),
    };
  }
  let message: string;
  try {
    message = typeof thrown === 'string' ? thrown : (JSON.stringify(thrown) ?? String(thrown));
  } catch {
    message = String(thrown);
  }
  return { name: 'NonError', message };
}

/** An `Error` rebuilt from a `CaseError`, for a test runner to report (it shows the original stack). */
export function fromCaseError(error: CaseError): Error {
  const rebuilt = new Error(error.message);
  rebuilt.name = error.name;
  if (error.code !== undefined) (rebuilt as Error & { code?: string }).code = error.code;
  if (error.stack) rebuilt.stack = error.stack;
  return rebuilt;
}
