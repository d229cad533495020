import { useEffect, useMemo, useState } from "react";
import { TransportProvider } from "@connectrpc/connect-query";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { fetchCaller, readOnlyReason, transportFor } from "./api.js";
import { ErrorMessage } from "./components/Outcome.js";
import { SCREENS } from "./screens/index.js";
import { SignIn } from "./screens/SignIn.js";
import { clearSession, loadSession, SessionContext, type Session, type StoredSession } from "./session.js";

/** The current hash route (#/access → "access"); a tiny router is all the console needs. */
function useRoute(): string {
  const read = () => window.location.hash.replace(/^#\/?/, "");
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const onChange = () => setRoute(read());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

export function App() {
  const [stored, setStored] = useState<StoredSession | undefined>(loadSession);
  const queryClient = useQueryClient();
  const signOut = () => {
    clearSession();
    queryClient.clear();
    setStored(undefined);
  };
  if (!stored) return <SignIn onSignedIn={() => setStored(loadSession())} />;
  return <Shell stored={stored} signOut={signOut} />;
}

function Shell({ stored, signOut }: { stored: StoredSession; signOut: () => void }) {
  const transport = useMemo(() => transportFor(stored.key), [stored.key]);
  // The key's scope, asked again on every load: the server, not the tab, says what the key may do.
  const caller = useQuery({ queryKey: ["caller", stored.key], queryFn: ({ signal }) => fetchCaller(transport, signal) });
  const route = useRoute();
  const screen = SCREENS.find((s) => s.path === route) ?? SCREENS[0]!;

  if (caller.isPending) return <p className="busy">Signing in …</p>;
  if (caller.error)
    return (
      <main className="sign-in">
        <ErrorMessage error={caller.error} />
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </main>
    );
  const session: Session = { actor: stored.actor, caller: caller.data, transport, readOnly: readOnlyReason(caller.data), signOut };
  const Current = screen.component;
  return (
    <SessionContext.Provider value={session}>
      <TransportProvider transport={transport}>
        <header className="top">
          <strong className="brand">sharegraph</strong>
          <nav aria-label="screens">
            {SCREENS.map((s) => (
              <a key={s.path} href={`#/${s.path}`} aria-current={s === screen ? "page" : undefined}>
                {s.title}
              </a>
            ))}
          </nav>
          <span className="who" data-testid="who">
            acting as <strong>{session.actor}</strong> with key <strong>{session.caller.keyName}</strong> ({session.caller.scope})
            {session.readOnly && <span className="readonly-reason"> — {session.readOnly}</span>}
          </span>
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </header>
        <main>
          <Current />
        </main>
      </TransportProvider>
    </SessionContext.Provider>
  );
}
