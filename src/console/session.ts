import { createContext, useContext } from "react";
import type { Transport } from "@connectrpc/connect";
import type { Caller } from "./api.js";

/*
 * The operator's session lives in this tab's sessionStorage only (never
 * localStorage, never a cookie): the API key and the user to act as. It is
 * gone when the tab closes; sign-out removes it at once.
 */

const STORAGE_KEY = "sharegraph.console.session";

export interface StoredSession {
  readonly key: string;
  readonly actor: string;
}

export function loadSession(): StoredSession | undefined {
  const raw = sessionStorage.getItem(STORAGE_KEY);
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(raw) as Partial<StoredSession>;
    if (typeof parsed.key === "string" && parsed.key !== "" && typeof parsed.actor === "string") return { key: parsed.key, actor: parsed.actor };
  } catch {
    // fall through: an unreadable entry is dropped
  }
  sessionStorage.removeItem(STORAGE_KEY);
  return undefined;
}

export function saveSession(session: StoredSession): void {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.clear();
}

/** What every screen gets: who acts, with which key's rights, and whether writes are off (and why). */
export interface Session {
  readonly actor: string;
  readonly caller: Caller;
  readonly transport: Transport;
  /** undefined: writes allowed; otherwise the reason shown next to every disabled write button. */
  readonly readOnly: string | undefined;
  signOut(): void;
}

export const SessionContext = createContext<Session | undefined>(undefined);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside a signed-in console");
  return session;
}
