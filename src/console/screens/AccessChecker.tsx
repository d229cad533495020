import { useState, type FormEvent } from "react";
import { skipToken, useMutation } from "@tanstack/react-query";
import { useQuery } from "@connectrpc/connect-query";
import { createClient } from "@connectrpc/connect";
import type { ObjectRef } from "../../gen/sharegraph/v1/common_pb.js";
import { Role } from "../../gen/sharegraph/v1/common_pb.js";
import { ContentService } from "../../gen/sharegraph/v1/content_service_pb.js";
import { Decision, PermissionService, type AccessPath, type ExplainPermissionResponse } from "../../gen/sharegraph/v1/permission_service_pb.js";
import { ErrorMessage, Outcome } from "../components/Outcome.js";
import { WriteButton } from "../components/WriteButton.js";
import { useSession } from "../session.js";

/*
 * "Can <subject> <permission> <resource>?": CheckPermission for the answer,
 * ExplainPermission for why — the path(s) from subject to resource, or for a
 * denial the grants that exist and what is missing — with seed 003's
 * troubleshooting advice. A manager can grant a role on the resource from
 * here (ContentService/Share, as the signed-in actor) and see the answer
 * change (the re-check reads at least as fresh as the grant).
 */

const RESOURCE_TYPES = ["dashboard", "report", "board", "workbook", "folder", "workspace", "organization", "group", "entity", "service", "account"];
const PERMISSIONS = ["view", "interact", "explore", "edit", "share", "delete", "manage", "see_name", "analyze", "create_content"];
const SUBJECT_TYPES = [
  { value: "user", label: "user" },
  { value: "group", label: "group (members)" },
  { value: "organization", label: "organization (members)" },
];
const SHAREABLE = new Set(["dashboard", "report", "board", "workbook", "folder"]);

interface Question {
  readonly resource: { type: string; id: string };
  readonly permission: string;
  readonly subject: { type: string; id: string; relation: string };
  readonly consistency: { requirement: { case: "fullyConsistent"; value: true } | { case: "atLeastAsFresh"; value: string } | { case: undefined } };
}

export function AccessChecker() {
  const [subjectType, setSubjectType] = useState("user");
  const [subjectId, setSubjectId] = useState("");
  const [permission, setPermission] = useState("view");
  const [resourceType, setResourceType] = useState("dashboard");
  const [resourceId, setResourceId] = useState("");
  const [fresh, setFresh] = useState(false);
  const [question, setQuestion] = useState<Question>();

  const ask = (token?: string) =>
    setQuestion({
      resource: { type: resourceType.trim(), id: resourceId.trim() },
      permission: permission.trim(),
      subject: { type: subjectType, id: subjectId.trim(), relation: subjectType === "user" ? "" : "member" },
      consistency: token
        ? { requirement: { case: "atLeastAsFresh", value: token } }
        : fresh
          ? { requirement: { case: "fullyConsistent", value: true } }
          : { requirement: { case: undefined } },
    });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    ask();
  };

  return (
    <section aria-labelledby="access-title">
      <h2 id="access-title">Access checker</h2>
      <form className="card question" onSubmit={submit} aria-label="question">
        <span>Can</span>
        <select aria-label="subject type" value={subjectType} onChange={(e) => setSubjectType(e.target.value)}>
          {SUBJECT_TYPES.map((t) => (
            <option key={t.value} value={t.value}>
              {t.label}
            </option>
          ))}
        </select>
        <input aria-label="subject id" name="subject" value={subjectId} onChange={(e) => setSubjectId(e.target.value)} placeholder="bob" required />
        <input aria-label="permission" name="permission" value={permission} onChange={(e) => setPermission(e.target.value)} list="permissions" required />
        <datalist id="permissions">
          {PERMISSIONS.map((p) => (
            <option key={p} value={p} />
          ))}
        </datalist>
        <select aria-label="resource type" value={resourceType} onChange={(e) => setResourceType(e.target.value)}>
          {RESOURCE_TYPES.map((t) => (
            <option key={t}>{t}</option>
          ))}
        </select>
        <input aria-label="resource id" name="resource" value={resourceId} onChange={(e) => setResourceId(e.target.value)} placeholder="q3-revenue" required />
        <span>?</span>
        <label className="inline">
          <input type="checkbox" checked={fresh} onChange={(e) => setFresh(e.target.checked)} /> fully consistent
        </label>
        <button type="submit">Check</button>
      </form>
      {question && <Answer question={question} onGranted={(token) => ask(token)} />}
    </section>
  );
}

function Answer({ question, onGranted }: { question: Question; onGranted: (token: string) => void }) {
  const check = useQuery(PermissionService.method.checkPermission, question);
  const explain = useQuery(PermissionService.method.explainPermission, check.data ? question : skipToken);
  const q = `${subjectLabel(question.subject)} ${question.permission} ${question.resource.type} ${question.resource.id}`;
  return (
    <div className="answer" data-testid="answer">
      <Outcome pending={check.isPending} error={check.error} label="Checking">
        {check.data && (
          <>
            <p className={`decision ${check.data.decision === Decision.ALLOWED ? "allowed" : "denied"}`} data-decision={Decision[check.data.decision]}>
              {check.data.decision === Decision.ALLOWED ? "✔ Allowed" : "✘ Denied"}: can {q}?
            </p>
            {/* Folded: it changes with every write, and is only needed to ask again at least as fresh. */}
            <details className="token">
              <summary>consistency token of this answer</summary>
              <code>{check.data.consistencyToken}</code>
            </details>
          </>
        )}
      </Outcome>
      {check.data && (
        <Outcome pending={explain.isPending} error={explain.error} label="Explaining">
          {explain.data && <Explanation explanation={explain.data} question={question} onGranted={onGranted} />}
        </Outcome>
      )}
    </div>
  );
}

function Explanation({ explanation: x, question, onGranted }: { explanation: ExplainPermissionResponse; question: Question; onGranted: (token: string) => void }) {
  const allowed = x.decision === Decision.ALLOWED;
  return (
    <div className="explanation">
      <p className="paragraph">{x.explanation}</p>
      {allowed ? (
        <Paths title={x.grantingPaths.length === 1 ? "The path that grants it" : `${x.grantingPaths.length} paths grant it`} paths={x.grantingPaths} kind="granting" />
      ) : (
        <>
          {x.partialPaths.length > 0 && <Paths title="What exists (not enough)" paths={x.partialPaths} kind="partial" />}
          {x.missing.length > 0 && (
            <div className="missing" aria-label="missing">
              <h3>What is missing</h3>
              <ul>
                {x.missing.map((m) => (
                  <li key={m}>{m}</li>
                ))}
              </ul>
            </div>
          )}
          <Troubleshooting explanation={x} question={question} />
          {SHAREABLE.has(question.resource.type) && <GrantForm question={question} onGranted={onGranted} />}
        </>
      )}
    </div>
  );
}

function Paths({ title, paths, kind }: { title: string; paths: readonly AccessPath[]; kind: "granting" | "partial" }) {
  return (
    <div className={`paths ${kind}`} aria-label={`${kind} paths`}>
      <h3>{title}</h3>
      <ol>
        {paths.map((p, i) => (
          <li key={i} className="path">
            <div className="steps">
              {p.steps.map((s, j) => (
                <span key={j} className="step">
                  {j === 0 && <Obj o={s.object} />}
                  <span className="link">— {s.link} →</span>
                  <Obj o={s.target} />
                </span>
              ))}
            </div>
            <div className="summary">{p.summary}</div>
          </li>
        ))}
      </ol>
    </div>
  );
}

function Obj({ o }: { o: ObjectRef | undefined }) {
  return <code className={`obj ${o?.type ?? ""}`}>{o ? `${o.type}:${o.id}` : "?"}</code>;
}

/** Seed 003's troubleshooting, for a denial whose missing piece is a workspace permission. */
function Troubleshooting({ explanation, question }: { explanation: ExplainPermissionResponse; question: Question }) {
  const text = [explanation.explanation, ...explanation.missing].join(" ");
  const workspace = /\b(VIEW|ANALYZE|MANAGE) on workspace\b/.test(text);
  if (!workspace) return null;
  return (
    <aside className="troubleshooting" aria-label="troubleshooting">
      <h3>Troubleshooting</h3>
      <p>
        The web UI can show {subjectLabel(question.subject)} as having a role on the {question.resource.type} while access is still refused when the
        subject:
      </p>
      <ul>
        <li>lost permission to access the workspace the {question.resource.type} is in, or</li>
        <li>lost hierarchy permission to access a parent workspace of the child workspace it is in, or</li>
        <li>was never given the necessary permission to the workspace in the first place (added through the API, or through a SEE permission).</li>
      </ul>
      <p>
        To enable access, a user with <strong>Workspace.ANALYZE</strong> on the workspace can assign the required workspace permission to the affected
        user or group (DirectoryService/SetWorkspacePermission).
      </p>
    </aside>
  );
}

const ROLES = [
  { role: Role.VIEWER, label: "viewer (View)" },
  { role: Role.SHARER, label: "sharer (View & Share)" },
  { role: Role.EDITOR, label: "editor (Edit & Share)" },
  { role: Role.MANAGER, label: "manager" },
];

/** Grant a role on the resource to the subject, as the signed-in actor; then check again, at least as fresh as the grant. */
function GrantForm({ question, onGranted }: { question: Question; onGranted: (token: string) => void }) {
  const { actor, transport } = useSession();
  const [role, setRole] = useState(Role.VIEWER);
  const share = useMutation({
    mutationFn: () => createClient(ContentService, transport).share({ actor, resource: question.resource, subject: question.subject, role }),
    onSuccess: (r) => onGranted(r.consistencyToken),
  });
  return (
    <form
      className="card grant"
      aria-label="grant"
      onSubmit={(e) => {
        e.preventDefault();
        share.mutate();
      }}
    >
      <span>
        Grant {subjectLabel(question.subject)} a role on {question.resource.type} {question.resource.id}, as {actor}:
      </span>
      <select aria-label="role" value={role} onChange={(e) => setRole(Number(e.target.value) as Role)}>
        {ROLES.map((r) => (
          <option key={r.role} value={r.role}>
            {r.label}
          </option>
        ))}
      </select>
      <WriteButton type="submit" disabled={share.isPending}>
        Share
      </WriteButton>
      {share.error ? <ErrorMessage error={share.error} /> : null}
      {share.data?.noOp && <span className="note">nothing changed (already granted or inherited)</span>}
    </form>
  );
}

function subjectLabel(s: { type: string; id: string; relation: string }): string {
  return s.relation ? `${s.type}:${s.id}#${s.relation}` : `${s.type}:${s.id}`;
}
