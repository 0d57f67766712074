// lane/wirecheck.ts keeps its own table of rules.proto (which field of which message is a varint,
// bytes or which submessage) to check RuleSet bytes before the generated decoder, which traps on
// surprises, sees them. This test derives the table from the proto's descriptors (the generated
// TypeScript, which test/integration/generated.test.ts keeps equal to proto/) and compares it with the
// table the filter was built with (through the test entry), so the two cannot drift.
import { beforeAll, describe, expect, it } from "vitest";
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { RuleSetSchema } from "../../control-plane/src/generated/graylane/v1/rules_pb.js";
import { LaneProbe } from "../support/lane-probe.js";

/** What wirecheck must expect of a field: a wire-type-0 value, a length-delimited blob, or a message. */
type Kind = "varint" | "bytes" | { message: string } | { unsupported: string };
/** Message name -> field number -> kind. */
type ProtoTable = Map<string, Map<number, Kind>>;

const VARINT_SCALARS = new Set([ScalarType.INT32, ScalarType.INT64, ScalarType.UINT32, ScalarType.UINT64,
  ScalarType.SINT32, ScalarType.SINT64, ScalarType.BOOL]);

function scalarKind(t: ScalarType): Kind {
  if (t === ScalarType.STRING || t === ScalarType.BYTES) return "bytes";
  if (VARINT_SCALARS.has(t)) return "varint";
  return { unsupported: `fixed-width ${ScalarType[t]}` }; // wirecheck has no fixed32/64 kind
}

function fieldKind(f: DescField): Kind {
  switch (f.fieldKind) {
    case "scalar": return scalarKind(f.scalar);
    case "enum": return "varint";
    case "message": return { message: f.message.typeName };
    case "map": return { unsupported: "map" };
    case "list":
      if (f.listKind === "message") return { message: f.message.typeName };
      // a packed list is one length-delimited field; unpacked elements are each a varint or blob
      if (f.packed) return "bytes";
      return f.listKind === "enum" ? "varint" : scalarKind(f.scalar);
  }
}

/** Every message reachable from RuleSet, by its descriptors. */
function protoTable(root: DescMessage): ProtoTable {
  const table: ProtoTable = new Map();
  const visit = (m: DescMessage) => {
    if (table.has(m.typeName)) return;
    const fields = new Map<number, Kind>();
    table.set(m.typeName, fields);
    for (const f of m.fields) {
      fields.set(f.number, fieldKind(f));
      if (f.message) visit(f.message);
    }
  };
  visit(root);
  return table;
}

/** wirecheck's SCHEMA: per message id, the kind code of fields 1..n (0: unknown, skipped). */
interface WireTable { varint: number; bytes: number; firstMessage: number; messages: number[][] }

function wireTable(probe: LaneProbe): WireTable {
  const x = probe.x;
  const messages = Array.from({ length: x.wireMessages() }, (_, m) =>
    Array.from({ length: x.wireFields(m) }, (_, i) => x.wireKind(m, i + 1)));
  return { varint: x.wireVarint(), bytes: x.wireBytes(), firstMessage: x.wireFirstMessage(), messages };
}

const show = (k: Kind | undefined) => (k === undefined ? "absent" : typeof k === "string" ? k : JSON.stringify(k));

/**
 * The differences between the proto's table and wirecheck's. Message ids are matched structurally:
 * RuleSet is id 0 (checkRuleSetWire starts there), and a message field's kind in wirecheck names the
 * id of its type, which must be the same id wherever that type appears.
 */
function differences(proto: ProtoTable, wire: WireTable, root = "graylane.v1.RuleSet"): string[] {
  const diffs: string[] = [];
  const idOf = new Map<string, number>([[root, 0]]);
  const nameOf = new Map<number, string>([[0, root]]);
  const queue = [root];
  const wireKind = (code: number): Kind | undefined => {
    if (code === 0) return undefined;
    if (code === wire.varint) return "varint";
    if (code === wire.bytes) return "bytes";
    if (code >= wire.firstMessage) return { message: `#${code - wire.firstMessage}` };
    return { unsupported: `code ${code}` };
  };
  while (queue.length > 0) {
    const name = queue.shift()!;
    const id = idOf.get(name)!;
    const fields = proto.get(name)!;
    const codes = wire.messages[id];
    if (codes === undefined) { diffs.push(`${name}: wirecheck has no message #${id}`); continue; }
    const last = Math.max(codes.length, ...fields.keys());
    for (let n = 1; n <= last; n++) {
      const want = fields.get(n);
      const code = codes[n - 1] ?? 0;
      const got = wireKind(code);
      const at = `${name} field ${n}`;
      if (want !== undefined && typeof want === "object" && "message" in want) {
        const sub = code - wire.firstMessage;
        if (code < wire.firstMessage) { diffs.push(`${at}: proto ${show(want)}, wirecheck ${show(got)}`); continue; }
        const known = idOf.get(want.message);
        if (known === undefined && !nameOf.has(sub)) {
          idOf.set(want.message, sub);
          nameOf.set(sub, want.message);
          queue.push(want.message);
        } else if (known !== sub) {
          diffs.push(`${at}: proto ${want.message}, wirecheck message #${sub} (which is ${nameOf.get(sub) ?? "?"})`);
        }
      } else if (show(want) !== show(got)) {
        diffs.push(`${at}: proto ${show(want)}, wirecheck ${show(got)}`);
      }
    }
  }
  for (let id = 0; id < wire.messages.length; id++) {
    if (!nameOf.has(id)) diffs.push(`wirecheck message #${id} is no message of the proto`);
  }
  return diffs;
}

let probe: LaneProbe;
let proto: ProtoTable;
let wire: WireTable;
beforeAll(async () => {
  probe = await LaneProbe.load();
  proto = protoTable(RuleSetSchema);
  wire = wireTable(probe);
});

describe("lane/wirecheck.ts against rules.proto", () => {
  it("has every message reachable from RuleSet, each field with the proto's kind", () => {
    expect(proto.size).toBe(8); // RuleSet, Group, StickyKey, Service, Lane, MatchBlock, Condition, Dfa
    expect(wire.messages.length).toBe(proto.size);
    expect(differences(proto, wire)).toEqual([]);
  });

  // The comparison itself must catch drift on either side.
  const mutated = (f: (w: WireTable) => void) => {
    const w: WireTable = { ...wire, messages: wire.messages.map((m) => [...m]) };
    f(w);
    return differences(proto, w);
  };
  it("would see a wirecheck field of the wrong kind, a missing or an extra field", () => {
    expect(mutated((w) => { w.messages[0][0] = w.varint; })).toEqual(["graylane.v1.RuleSet field 1: proto bytes, wirecheck varint"]);
    // without RuleSet.dfas nothing reaches the Dfa table either
    expect(mutated((w) => { w.messages[0].pop(); })).toEqual(["graylane.v1.RuleSet field 4: proto {\"message\":\"graylane.v1.Dfa\"}, wirecheck absent",
      `wirecheck message #${wire.messages.length - 1} is no message of the proto`]);
    expect(mutated((w) => { w.messages[0].push(w.varint); })).toEqual(["graylane.v1.RuleSet field 5: proto absent, wirecheck varint"]);
  });

  it("would see a submessage pointing at the wrong table, or a table no field reaches", () => {
    // RuleSet.groups (field 2) pointing at the Dfa table (RuleSet.dfas, field 4)
    expect(mutated((w) => { w.messages[0][1] = w.messages[0][3]; }).length).toBeGreaterThan(0);
    expect(mutated((w) => { w.messages.push([w.bytes]); })).toEqual([`wirecheck message #${wire.messages.length} is no message of the proto`]);
  });

  it("would see a proto field renumbered, retyped or added", () => {
    const changed = (f: (p: ProtoTable) => void) => {
      const p: ProtoTable = new Map([...proto].map(([k, v]) => [k, new Map(v)]));
      f(p);
      return differences(p, wire);
    };
    const condition = "graylane.v1.Condition";
    expect(changed((p) => { const m = p.get(condition)!; m.set(8, m.get(7)!); m.delete(7); })).toEqual([
      `${condition} field 7: proto absent, wirecheck varint`, `${condition} field 8: proto varint, wirecheck absent`]);
    expect(changed((p) => { p.get(condition)!.set(5, "bytes"); })).toEqual([`${condition} field 5: proto bytes, wirecheck varint`]);
    expect(changed((p) => { p.get("graylane.v1.Dfa")!.set(7, { unsupported: "fixed-width FIXED64" }); })).toHaveLength(1);
  });
});
