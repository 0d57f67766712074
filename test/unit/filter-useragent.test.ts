// User-Agent classes over a table of real User-Agent strings, through the real filter: one lane per
// OS (or browser) class, base for everything else.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { newFilter, routeTo, type Filter } from "../support/filter.js";

interface Row { ua: string; os: string; browser: string }
const rows: Row[] = JSON.parse(readFileSync("test/fixtures/user-agents.json", "utf8"));

const OS = ["iOS", "Android", "Windows", "macOS", "Linux"];
const BROWSERS = ["Chrome", "Edge", "Firefox", "Safari", "IE"];

function classGroup(kind: "os" | "browser", classes: string[]) {
  return {
    name: kind, services: [{ name: "svc" }],
    lanes: classes.map((c) => ({ name: c.toLowerCase(), services: ["svc"], match: [{ [kind]: [c] }] })),
  };
}

describe("user-agent classes", () => {
  let os: Filter;
  let browser: Filter;

  it("the table is large and covers every class", async () => {
    expect(rows.length).toBeGreaterThanOrEqual(30);
    for (const c of OS) expect(rows.some((r) => r.os === c), c).toBe(true);
    for (const c of BROWSERS) expect(rows.some((r) => r.browser === c), c).toBe(true);
    os = await newFilter({ groups: [classGroup("os", OS)] });
    browser = await newFilter({ groups: [classGroup("browser", BROWSERS)] });
  });

  for (const row of rows) {
    it(`${row.os} / ${row.browser}: ${row.ua.slice(0, 70) || "(empty)"}`, () => {
      const wantOs = OS.includes(row.os) ? row.os.toLowerCase() : "base";
      const wantBrowser = BROWSERS.includes(row.browser) ? row.browser.toLowerCase() : "base";
      expect(os.decide({ "user-agent": row.ua }, routeTo("svc")).lane).toBe(wantOs);
      expect(browser.decide({ "user-agent": row.ua }, routeTo("svc")).lane).toBe(wantBrowser);
    });
  }
});
