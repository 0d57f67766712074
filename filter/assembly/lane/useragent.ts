// User-Agent classes, exclusive and most specific first (DESIGN.md): Edge before Chrome, Android
// before Linux, iPhone/iPad/iPod as iOS. Bits follow rules.proto's UserAgentOs / UserAgentBrowser;
// the result holds OS bits in the low byte and browser bits in the next.
import { contains, utf8 } from "./bytes";

export const OS_IOS: u32 = 1;
export const OS_ANDROID: u32 = 2;
export const OS_WINDOWS: u32 = 4;
export const OS_MACOS: u32 = 8;
export const OS_LINUX: u32 = 16;

export const BROWSER_CHROME: u32 = 1;
export const BROWSER_EDGE: u32 = 2;
export const BROWSER_FIREFOX: u32 = 4;
export const BROWSER_SAFARI: u32 = 8;
export const BROWSER_IE: u32 = 16;

// Token tables, checked in order; the first token found decides. A class of 0 means "none of ours".
const OS_TOKENS: StaticArray<string> = ["iPhone", "iPad", "iPod", "Android", "Windows", "Macintosh", "Mac OS X", "Linux", "X11", "CrOS"];
const OS_CLASSES: StaticArray<u32> = [OS_IOS, OS_IOS, OS_IOS, OS_ANDROID, OS_WINDOWS, OS_MACOS, OS_MACOS, OS_LINUX, OS_LINUX, OS_LINUX];
// Chromium-based browsers we do not name (Opera, Samsung, Yandex) must not count as Chrome.
const BROWSER_TOKENS: StaticArray<string> = [
  "Edg/", "Edge/", "EdgA/", "EdgiOS/", "OPR/", "Opera", "SamsungBrowser/", "YaBrowser/", "MSIE ", "Trident/",
  "Firefox/", "FxiOS/", "Chrome/", "CriOS/", "Chromium/", "Safari/"];
const BROWSER_CLASSES: StaticArray<u32> = [
  BROWSER_EDGE, BROWSER_EDGE, BROWSER_EDGE, BROWSER_EDGE, 0, 0, 0, 0, BROWSER_IE, BROWSER_IE,
  BROWSER_FIREFOX, BROWSER_FIREFOX, BROWSER_CHROME, BROWSER_CHROME, BROWSER_CHROME, BROWSER_SAFARI];

function toBytes(tokens: StaticArray<string>): Array<Uint8Array> {
  const out = new Array<Uint8Array>(tokens.length);
  for (let i = 0; i < tokens.length; i++) out[i] = utf8(tokens[i]);
  return out;
}

const OS_BYTES = toBytes(OS_TOKENS);
const BROWSER_BYTES = toBytes(BROWSER_TOKENS);

function first(p: usize, l: usize, tokens: Array<Uint8Array>, classes: StaticArray<u32>): u32 {
  for (let i = 0; i < tokens.length; i++) {
    if (contains(p, l, unchecked(tokens[i]))) return unchecked(classes[i]);
  }
  return 0;
}

export function classifyUserAgent(p: usize, l: usize): u32 {
  return first(p, l, OS_BYTES, OS_CLASSES) | (first(p, l, BROWSER_BYTES, BROWSER_CLASSES) << 8);
}
