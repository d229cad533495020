import { useMemo, useState, type FormEvent } from "react";
import { useQuery } from "@connectrpc/connect-query";
import { useMutation } from "@tanstack/react-query";
import type { Transport } from "@connectrpc/connect";
import { DirectoryService } from "../../gen/sharegraph/v1/directory_service_pb.js";
import { fetchCaller, readOnlyReason, transportFor, type Caller } from "../api.js";
import { ErrorMessage, Outcome } from "../components/Outcome.js";
import { Pager, usePager } from "../components/Pager.js";
import { saveSession } from "../session.js";

/**
 * Sign-in: paste an API key (asked about with AdminService/GetCaller, so a
 * wrong key is refused here by the server), then pick the user to act as.
 * The key stays in this tab's sessionStorage.
 */
export function SignIn({ onSignedIn }: { onSignedIn: () => void }) {
  const [key, setKey] = useState("");
  const [checked, setChecked] = useState<{ apiKey: string; caller: Caller; transport: Transport }>();
  const verify = useMutation({
    mutationFn: async (candidate: string) => {
      const transport = transportFor(candidate);
      return { apiKey: candidate, caller: await fetchCaller(transport), transport };
    },
    onSuccess: setChecked,
  });

  const submitKey = (e: FormEvent) => {
    e.preventDefault();
    setChecked(undefined);
    verify.mutate(key.trim());
  };

  return (
    <main className="sign-in">
      <h1>sharegraph console</h1>
      <p className="hint">
        Paste an API key (<code>.sharegraph/api-keys</code> on the server). It is kept in this tab only (sessionStorage) and sent with every call, as
        with grpcurl.
      </p>
      <form onSubmit={submitKey} className="card">
        <label>
          API key
          <input type="password" name="api-key" autoComplete="off" value={key} onChange={(e) => setKey(e.target.value)} required />
        </label>
        <button type="submit" disabled={verify.isPending || key.trim() === ""}>
          Continue
        </button>
        <Outcome pending={verify.isPending} error={verify.error} label="Checking the key" />
      </form>
      {checked && <ActorStep {...checked} onSignedIn={onSignedIn} />}
    </main>
  );
}

function ActorStep({ apiKey, caller, transport, onSignedIn }: { apiKey: string; caller: Caller; transport: Transport; onSignedIn: () => void }) {
  const [actor, setActor] = useState(caller.anyActor ? "" : (caller.actors[0] ?? ""));
  const [query, setQuery] = useState("");
  const pager = usePager();
  const users = useQuery(DirectoryService.method.listUsers, { query, page: { pageSize: 20, pageToken: pager.token } }, { transport });
  const choices = useMemo(() => {
    const listed = users.data?.users ?? [];
    return caller.anyActor ? listed : listed.filter((u) => caller.actors.includes(u.id));
  }, [users.data, caller]);
  const reason = readOnlyReason(caller);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    saveSession({ key: apiKey, actor: actor.trim() });
    onSignedIn();
  };

  return (
    <form onSubmit={submit} className="card" aria-label="act as">
      <p>
        Key <strong>{caller.keyName}</strong>, scope <strong>{caller.scope}</strong>
        {reason && <span className="readonly-reason"> — {reason}</span>}
        {!caller.anyActor && <> — may act as {caller.actors.length > 0 ? caller.actors.join(", ") : "no user"}</>}
      </p>
      <label>
        Act as (user id)
        <input name="actor" value={actor} onChange={(e) => setActor(e.target.value)} list="actor-choices" placeholder="e.g. alice" />
      </label>
      <label>
        Find users
        <input
          name="user-search"
          type="search"
          value={query}
          onChange={(e) => {
            setQuery(e.target.value);
            pager.reset();
          }}
          placeholder="name or email"
        />
      </label>
      {users.error ? (
        <ErrorMessage error={users.error} />
      ) : (
        <>
          <ul className="choices" aria-label="users">
            {choices.map((u) => (
              <li key={u.id}>
                <button type="button" className={u.id === actor ? "chosen" : ""} onClick={() => setActor(u.id)}>
                  <strong>{u.id}</strong> {u.displayName} <small>{u.email}</small>
                </button>
              </li>
            ))}
            {users.isPending && <li className="busy">Loading users …</li>}
          </ul>
          <Pager pager={pager} nextPageToken={users.data?.nextPageToken} busy={users.isFetching} />
        </>
      )}
      <button type="submit" disabled={actor.trim() === ""}>
        Sign in as {actor.trim() || "…"}
      </button>
    </form>
  );
}
