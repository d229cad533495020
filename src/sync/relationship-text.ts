import type { Relationship, SubjectRef } from "../engine/engine.js";

export { formatRelationship } from "../engine/engine.js";

const RELATIONSHIP = /^([a-z][a-z0-9_]*):([^#@\s]+)#([a-z][a-z0-9_]*)@([a-z][a-z0-9_]*):([^#@\s]+)(?:#([a-z][a-z0-9_]*))?$/;

/** Parses "resource_type:id#relation@subject_type:id[#relation]". */
export function parseRelationship(text: string): Relationship {
  const m = RELATIONSHIP.exec(text);
  if (!m) throw new Error(`not a relationship: ${JSON.stringify(text)}`);
  const [, resourceType, resourceId, relation, subjectType, subjectId, subjectRelation] = m as unknown as string[];
  const subject: SubjectRef = subjectRelation
    ? { type: subjectType!, id: subjectId!, relation: subjectRelation }
    : { type: subjectType!, id: subjectId! };
  return { resource: { type: resourceType!, id: resourceId! }, relation: relation!, subject };
}
