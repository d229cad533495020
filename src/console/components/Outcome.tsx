import type { ReactNode } from "react";
import { describeError } from "../api.js";

/** The server's error for a failed call, in its own words: code and message. */
export function ErrorMessage({ error }: { error: unknown }) {
  const { code, message } = describeError(error);
  return (
    <div className="error" role="alert">
      <span className="code">{code}</span> {message}
    </div>
  );
}

/** A call's progress and outcome: a busy line while pending, the server's error, or the children once done. */
export function Outcome({ pending, error, label, children }: { pending: boolean; error: unknown; label: string; children?: ReactNode }) {
  if (pending)
    return (
      <div className="busy" role="status" aria-live="polite">
        {label} …
      </div>
    );
  if (error) return <ErrorMessage error={error} />;
  return <>{children}</>;
}

/** The line beside an action's buttons while its call runs. */
export function Busy({ pending, label }: { pending: boolean; label: string }) {
  if (!pending) return null;
  return (
    <span className="busy" role="status">
      {label} …
    </span>
  );
}
