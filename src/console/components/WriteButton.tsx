import type { ButtonHTMLAttributes } from "react";
import { useSession } from "../session.js";

/**
 * A button that changes something. With a check-scope key it is disabled and
 * says why (the server would refuse the call anyway: PERMISSION_DENIED).
 */
export function WriteButton(props: ButtonHTMLAttributes<HTMLButtonElement>) {
  const { readOnly } = useSession();
  const { disabled, children, ...rest } = props;
  return (
    <span className="write">
      <button {...rest} disabled={Boolean(disabled) || readOnly !== undefined} title={readOnly} data-write="">
        {children}
      </button>
      {readOnly && <span className="readonly-reason">{readOnly}</span>}
    </span>
  );
}
