// Every condition type of the Istio-style match schema, with a match and a miss, through the real
// filter.wasm: lane "hit" when the block holds, else base.
import { describe, expect, it } from "vitest";
import { newFilter, routeTo, type Headers } from "../support/filter.js";

async function laneFor(match: unknown[], headers: Headers): Promise<string | undefined> {
  const f = await newFilter({ groups: [{
    name: "g", services: [{ name: "svc" }],
    lanes: [{ name: "hit", services: ["svc"], match }],
  }] });
  return f.decide(headers, routeTo("svc")).lane;
}

type Case = [string, unknown, Headers, "hit" | "base"];

const cases: Case[] = [
  // headers
  ["header exact", { headers: { grayrelease: { exact: "version2" } } }, { grayrelease: "version2" }, "hit"],
  ["header exact miss", { headers: { grayrelease: { exact: "version2" } } }, { grayrelease: "version20" }, "base"],
  ["header exact is case-sensitive on the value", { headers: { grayrelease: { exact: "version2" } } }, { grayrelease: "Version2" }, "base"],
  ["header name is case-insensitive", { headers: { GrayRelease: { exact: "v" } } }, { grayrelease: "v" }, "hit"],
  ["header prefix", { headers: { "x-env": { prefix: "stag" } } }, { "x-env": "staging-2" }, "hit"],
  ["header prefix miss", { headers: { "x-env": { prefix: "stag" } } }, { "x-env": "prod" }, "base"],
  ["header regex full match", { headers: { "x-ver": { regex: "v[0-9]+(\\.[0-9]+)*" } } }, { "x-ver": "v1.22.3" }, "hit"],
  ["header regex is not a substring search", { headers: { "x-ver": { regex: "v[0-9]+" } } }, { "x-ver": "xv1" }, "base"],
  ["header regex with a leading (?i) ignores case", { headers: { "user-agent": { regex: "(?i).*iphone.*" } } }, { "user-agent": "Mozilla/5.0 (IPhone)" }, "hit"],
  ["header regex without (?i) keeps case", { headers: { "user-agent": { regex: ".*iphone.*" } } }, { "user-agent": "Mozilla/5.0 (IPhone)" }, "base"],
  ["header present", { headers: { "x-debug": { present: true } } }, { "x-debug": "" }, "hit"],
  ["header present miss", { headers: { "x-debug": { present: true } } }, { other: "1" }, "base"],
  ["header absent", { headers: { "x-debug": { absent: true } } }, { other: "1" }, "hit"],
  ["header absent miss", { headers: { "x-debug": { absent: true } } }, { "x-debug": "1" }, "base"],
  // cookies
  ["cookie exact", { cookies: { uid: { exact: "1234" } } }, { cookie: "a=b; uid=1234; c=d" }, "hit"],
  ["cookie exact miss (other cookie has the value)", { cookies: { uid: { exact: "1234" } } }, { cookie: "xuid=1234; uid=9" }, "base"],
  ["cookie regex", { cookies: { uid: { regex: "1[0-9]{3}" } } }, { cookie: "uid=1999" }, "hit"],
  ["cookie regex miss", { cookies: { uid: { regex: "1[0-9]{3}" } } }, { cookie: "uid=19999" }, "base"],
  ["cookie prefix across two Cookie headers", { cookies: { team: { prefix: "qa-" } } }, [["cookie", "a=1"], ["cookie", "team=qa-7"]], "hit"],
  ["cookie present", { cookies: { beta: { present: true } } }, { cookie: "beta" }, "hit"],
  ["cookie absent", { cookies: { beta: { absent: true } } }, { cookie: "alpha=1" }, "hit"],
  ["cookie absent miss", { cookies: { beta: { absent: true } } }, { cookie: "beta=1" }, "base"],
  // query parameters
  ["query exact", { queryParams: { beta: { exact: "1" } } }, { ":path": "/a?x=2&beta=1" }, "hit"],
  ["query exact miss", { queryParams: { beta: { exact: "1" } } }, { ":path": "/a?beta=11" }, "base"],
  ["query ignores the fragment", { queryParams: { beta: { exact: "1" } } }, { ":path": "/a?beta=1#top" }, "hit"],
  ["query prefix", { queryParams: { ab: { prefix: "exp" } } }, { ":path": "/?ab=exp-42" }, "hit"],
  ["query regex", { queryParams: { id: { regex: "[a-f0-9]{4}" } } }, { ":path": "/?id=beef" }, "hit"],
  ["query present", { queryParams: { debug: { present: true } } }, { ":path": "/?debug" }, "hit"],
  ["query absent", { queryParams: { debug: { absent: true } } }, { ":path": "/?x=1" }, "hit"],
  ["query absent miss", { queryParams: { debug: { absent: true } } }, { ":path": "/?debug=0" }, "base"],
  // uri
  ["uri exact ignores the query", { uri: { exact: "/api/v2" } }, { ":path": "/api/v2?x=1" }, "hit"],
  ["uri exact miss", { uri: { exact: "/api/v2" } }, { ":path": "/api/v2/" }, "base"],
  ["uri prefix", { uri: { prefix: "/api" } }, { ":path": "/api/users" }, "hit"],
  ["uri prefix miss", { uri: { prefix: "/api" } }, { ":path": "/web/api" }, "base"],
  ["uri regex", { uri: { regex: "/items/[0-9]+" } }, { ":path": "/items/42" }, "hit"],
  ["uri regex miss", { uri: { regex: "/items/[0-9]+" } }, { ":path": "/items/x" }, "base"],
  // method
  ["method", { method: ["GET", "POST"] }, { ":method": "POST" }, "hit"],
  ["method miss", { method: ["GET", "POST"] }, { ":method": "DELETE" }, "base"],
  // user agent classes
  ["os", { os: ["iOS"] }, { "user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1" }, "hit"],
  ["os miss", { os: ["iOS", "Android"] }, { "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36" }, "base"],
  ["browser", { browser: ["Chrome"] }, { "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36" }, "hit"],
  ["browser: Edge is not Chrome", { browser: ["Chrome"] }, { "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91" }, "base"],
  ["browser with no user agent", { browser: ["Chrome"] }, {}, "base"],
  // blocks: all conditions of a block, any block of a lane
  ["block needs all its conditions", { headers: { a: { exact: "1" } }, method: ["GET"] }, { a: "1", ":method": "POST" }, "base"],
  ["block with all conditions", { headers: { a: { exact: "1" } }, method: ["GET"] }, { a: "1", ":method": "GET" }, "hit"],
];

describe("conditions", () => {
  for (const [name, block, headers, want] of cases) {
    it(name, async () => {
      expect(await laneFor([block], headers)).toBe(want);
    });
  }

  it("a lane matches when any of its blocks holds", async () => {
    const blocks = [{ headers: { a: { exact: "1" } } }, { queryParams: { b: { exact: "2" } } }];
    expect(await laneFor(blocks, { ":path": "/?b=2" })).toBe("hit");
    expect(await laneFor(blocks, { a: "1" })).toBe("hit");
    expect(await laneFor(blocks, { a: "2", ":path": "/?b=3" })).toBe("base");
  });
});
