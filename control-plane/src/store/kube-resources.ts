// The Kubernetes names of Graylane's resources (API group graylane.io, version v1alpha1), shared by
// the CRD generator (kube/crds.ts) and the Kubernetes store (store/kubernetes.ts). Every one is
// cluster-scoped: group and service names are global, as REST and the filter know them.
import { z } from "zod";

export const API_GROUP = "graylane.io";
export const API_VERSION = "v1alpha1";
export const GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

export interface ResourceNames {
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  shortNames: string[];
}

export const LANE_GROUP: ResourceNames = { kind: "LaneGroup", listKind: "LaneGroupList", plural: "lanegroups", singular: "lanegroup", shortNames: ["lg"] };
export const RELEASE: ResourceNames = { kind: "Release", listKind: "ReleaseList", plural: "releases", singular: "release", shortNames: ["glrel"] };
export const LANE_GROUP_REVISION: ResourceNames = {
  kind: "LaneGroupRevision", listKind: "LaneGroupRevisionList", plural: "lanegrouprevisions", singular: "lanegrouprevision", shortNames: ["lgrev"],
};

/** The API path of the LaneGroup objects (cluster-scoped). */
export const LANE_GROUP_PATH = `/apis/${API_GROUP}/${API_VERSION}/${LANE_GROUP.plural}`;

/** The field manager of every write the control plane makes (server-side apply and updates). */
export const FIELD_MANAGER = "graylane";
/** Annotation on a LaneGroup the control plane wrote: the actor of that write (REST token name, CLI user). */
export const ACTOR_ANNOTATION = "graylane.io/actor";


const Condition = z.strictObject({
  type: z.string().min(1).max(316),
  status: z.enum(["True", "False", "Unknown"]),
  reason: z.string().max(1024).optional(),
  message: z.string().max(32768).optional(),
  lastTransitionTime: z.string().meta({ description: "RFC 3339 time" }),
  observedGeneration: z.number().int().min(0).optional(),
});

/** A LaneGroup's status (its subresource): what the control plane made of the spec. */
export const LaneGroupStatus = z.strictObject({
  revision: z.number().int().min(0).optional().meta({ description: "The Graylane revision that last wrote the spec: the REST ETag" }),
  observedGeneration: z.number().int().min(0).optional().meta({ description: "The metadata.generation that revision recorded" }),
  services: z.string().max(4096).optional().meta({ description: "The group's services, comma-separated (kubectl get prints them)" }),
  lanes: z.string().max(4096).optional().meta({ description: "The group's lanes besides base, comma-separated" }),
  discovered: z.string().max(32768).optional().meta({ description: "With autoLanes: the services the mesh controller found in each lane (\"canary: mocka, mockc\"); never written into the spec" }),
  conditions: z.array(Condition).max(16).optional().meta({ description: "Ready: the spec passed every check and is in the RuleSet; Synced: every live subscriber holds a RuleSet compiled from it" }),
}).meta({ description: "Written by the control plane" });
export type LaneGroupStatus = z.output<typeof LaneGroupStatus>;

const body = z.record(z.string(), z.unknown()).meta({ description: "A lane group document (every default filled in)" });

/** One group a revision changed: its content before and after (absent: did not exist / deleted). */
const RevisionChange = z.strictObject({
  group: z.string(),
  action: z.enum(["create", "replace", "delete"]),
  before: body.optional(),
  beforeRevision: z.number().int().min(0).meta({ description: "The revision that had written `before` (0: none)" }),
  after: body.optional(),
  resourceVersion: z.string().meta({ description: "The LaneGroup's metadata.resourceVersion right after this change (empty once deleted)" }),
  patch: z.array(z.record(z.string(), z.unknown())).meta({ description: "RFC 6902 ops from before to after; replace and remove also carry `old`" }),
});
export type RevisionChange = z.output<typeof RevisionChange>;

/** A LaneGroupRevision's spec: one immutable entry of the revision log. */
export const LaneGroupRevisionSpec = z.strictObject({
  revision: z.number().int().min(1),
  time: z.string().meta({ description: "ISO 8601, UTC" }),
  actor: z.string().meta({ description: "The REST token or CLI user, or for a kubectl change the field manager the API server recorded (`kubectl` when none)" }),
  op: z.enum(["create", "replace", "delete", "rollback", "discover"]),
  group: z.string().optional().meta({ description: "The group a create/replace/delete named (absent for a rollback)" }),
  target: z.number().int().min(1).optional().meta({ description: "For a rollback: the revision whose content it restored" }),
  groups: z.string().meta({ description: "Names of the changed groups, comma-separated (for kubectl get)" }),
  changes: z.array(RevisionChange),
});
export type LaneGroupRevisionSpec = z.output<typeof LaneGroupRevisionSpec>;
